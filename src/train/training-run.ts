/**
 * One invocation of a training run: the model's weights and optimizer (`TrainStep`), the batch
 * stream, the counters a checkpoint carries, and the three things the loop does besides stepping:
 * log metrics, validate, checkpoint. `train()` (trainer.ts) drives it.
 */
import fs from 'node:fs';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { CropStream, type CropStreamState, SegmentStream, type SegmentStreamState } from '../data/batches.js';
import { filesOf, readManifest, splitSource } from '../data/manifest.js';
import { corpusStats } from '../data/stats.js';
import { evaluateCodes } from '../infer/evaluate.js';
import { saveModel } from '../models/model-files.js';
import { initParams } from '../models/param-spec.js';
import { familyOf, type ModelConfig, paramSpecOf } from '../models/registry.js';
import type { ExportedState } from '../models/sequence-model.js';
import { writeFileAtomic } from '../util/atomic.js';
import { exportAdam, importAdam } from './adam-state.js';
import { type loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { readMetrics, writeCurves } from './curves.js';
import { type StepResult, TrainStep } from './tf-step.js';
import { RunError, type TrainOptions } from './run-options.js';

/** What a checkpoint holds besides tensors: enough to continue the run exactly. */
export interface TrainState {
  /** training wall time over every session of this run, for reports (absent in older checkpoints) */
  elapsedSeconds?: number;
  step: number;
  samplesSeen: number;
  skippedSteps: number;
  stream: SegmentStreamState | CropStreamState;
  rng: ReturnType<TrainStep['exportState']>['rng'];
  modelState: Omit<ExportedState, 'tensors'>;
  train: Omit<TrainOptions, 'onStep' | 'onLog' | 'stopSignal' | 'minutes' | 'stopAfter' | 'data' | 'run' | 'model'>;
}

export type Resumed = ReturnType<typeof loadCheckpoint>;

export function trainOptionsOf(o: TrainOptions): TrainState['train'] {
  return {
    batch: o.batch,
    steps: o.steps,
    peakLr: o.peakLr,
    minLr: o.minLr,
    warmup: o.warmup,
    clip: o.clip,
    accumulate: o.accumulate,
    validEvery: o.validEvery,
    validSamples: o.validSamples,
    checkpointEvery: o.checkpointEvery,
    seed: o.seed,
  };
}

function initialWeights(cfg: ModelConfig, seed: number) {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, seed, cfg.initStd);
  return new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }]));
}

function batchStream(cfg: ModelConfig, o: TrainOptions, source: ReturnType<typeof splitSource>, prior?: TrainState) {
  const windows = familyOf(cfg).trainingWindows(cfg);
  return windows.kind === 'crops'
    ? new CropStream(
        source,
        { batch: o.batch, receptiveField: windows.receptiveField, targetLength: windows.targets, seed: o.seed },
        prior?.stream as CropStreamState | undefined,
      )
    : new SegmentStream(
        source,
        { batch: o.batch, segment: windows.segment },
        prior?.stream as SegmentStreamState | undefined,
      );
}

/**
 * The valid split's files, each cut to a window from its middle so that together they hold at most
 * `cap` samples (file starts are mostly silence and would flatter the model).
 */
function validationSet(corpus: string, cap: number): { path: string; codes: Uint8Array }[] {
  const m = readManifest(corpus);
  const files = filesOf(m, 'valid');
  if (!files.length) return [];
  const fd = fs.openSync(path.join(corpus, m.binaries.valid), 'r');
  try {
    const per = Math.max(2, Math.floor(cap / files.length));
    return files.map((f) => {
      const n = Math.min(f.length, per);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, f.offset + Math.floor((f.length - n) / 2));
      return { path: f.path, codes: new Uint8Array(buf) };
    });
  } finally {
    fs.closeSync(fd);
  }
}

export class TrainingRun {
  step: number;
  samplesSeen: number;
  skippedSteps: number;
  validNats: number | null = null;
  lastNll: number | null = null;
  interrupted = false;
  readonly prior?: TrainState;
  readonly unigram: number;
  private readonly trainer: TrainStep;
  private readonly stream: SegmentStream | CropStream;
  private readonly validFiles: { path: string; codes: Uint8Array }[];
  private readonly metricsFile: string;
  private readonly t0 = Date.now();
  private tokensThisRun = 0;

  /**
   * Sets up weights (fresh, or the checkpoint's), optimizer moments, stream position, RNG and
   * carried state; writes train.json; drops metric lines the checkpoint does not cover.
   */
  static async open(o: TrainOptions, corpus: string, resumed: Resumed | null): Promise<TrainingRun> {
    const manifest = readManifest(corpus);
    const source = splitSource(corpus, manifest, 'train');
    if (source.files.reduce((a, f) => a + f.length, 0) < 2)
      throw new RunError(`corpus ${corpus} has no training audio`);
    const unigram = corpusStats(corpus, manifest).find((s) => s.split === 'train')!.entropyNats;
    const run = new TrainingRun(o, corpus, source, unigram, resumed);
    if (resumed && run.prior) {
      await importAdam(run.trainer.optimizer, resumed.optimizer);
      const tensors = [...resumed.params.keys()]
        .filter((k) => k.startsWith('state/'))
        .sort()
        .map((k) => resumed.params.get(k)!);
      run.trainer.importState({ model: { ...run.prior.modelState, tensors }, rng: run.prior.rng });
    } else {
      saveModel(o.run, o.model, run.trainer.exportParams());
    }
    // Relative to the run folder, so a run folder moved or committed with its corpus beside it still finds it.
    const corpusFromRun = path.relative(path.resolve(o.run), path.resolve(corpus)).split(path.sep).join('/');
    const record = { ...trainOptionsOf(o), corpus: corpusFromRun, backend: tf.getBackend() };
    writeFileAtomic(path.join(o.run, 'train.json'), JSON.stringify(record, null, 2) + '\n');
    // Lines written after the checkpoint we resume from (a kill between checkpoints) are replayed: drop them.
    if (fs.existsSync(run.metricsFile)) {
      const keep = readMetrics(run.metricsFile).filter((m) => m.step <= run.startStep);
      writeFileAtomic(run.metricsFile, keep.map((m) => JSON.stringify(m) + '\n').join(''));
    }
    return run;
  }

  private constructor(
    private readonly o: TrainOptions,
    private readonly corpus: string,
    source: ReturnType<typeof splitSource>,
    unigram: number,
    resumed: Resumed | null,
  ) {
    const cfg = o.model;
    this.prior = resumed?.state as TrainState | undefined;
    this.unigram = unigram;
    const specs = paramSpecOf(cfg);
    const init = resumed ? resumed.params : initialWeights(cfg, o.seed);
    const modelParams = new Map(specs.map((s) => [s.name, init.get(s.name)!]));
    this.trainer = new TrainStep(cfg, modelParams, o.batch, {
      lr: o.peakLr,
      clip: o.clip,
      seed: o.seed,
      accumulate: o.accumulate,
    });
    this.stream = batchStream(cfg, o, source, this.prior);
    this.step = this.prior?.step ?? 0;
    this.samplesSeen = this.prior?.samplesSeen ?? 0;
    this.skippedSteps = this.prior?.skippedSteps ?? 0;
    this.validFiles = validationSet(corpus, o.validSamples);
    this.metricsFile = path.join(o.run, 'metrics.jsonl');
  }

  /** The step this invocation started from (0 for a fresh run). */
  get startStep(): number {
    return this.prior?.step ?? 0;
  }

  get minutes(): number {
    return (Date.now() - this.t0) / 60000;
  }

  /** Training wall time over every invocation of the run, in seconds. */
  elapsed(): number {
    return Math.round(((this.prior?.elapsedSeconds ?? 0) + (Date.now() - this.t0) / 1000) * 10) / 10;
  }

  get samplesPerSecond(): number {
    return this.tokensThisRun / Math.max(1e-3, (Date.now() - this.t0) / 1000);
  }

  /** True between micro-steps of an accumulation cycle, when a checkpoint would lose gradients. */
  get midCycle(): boolean {
    return this.trainer.midCycle;
  }

  /**
   * One optimizer step at learning rate `lr`: `accumulate` micro-batches (more when some are
   * skipped as non-finite, at most 4x), then one metrics line.
   */
  trainStep(lr: number): StepResult {
    const log = this.o.onLog ?? (() => {});
    let r: StepResult;
    let micro = 0;
    do {
      const b = this.stream.next();
      this.trainer.setLearningRate(lr);
      r = this.trainer.step({ inputs: b.inputs, targets: b.targets, mask: b.mask, reset: b.reset });
      this.tokensThisRun += b.tokens;
      this.samplesSeen += b.tokens;
      micro++;
      if (r.skipped) {
        this.skippedSteps++;
        log(
          `step ${this.step}: non-finite loss or gradient (loss ${r.loss}); step skipped, weights untouched ` +
            `(${this.skippedSteps} so far)`,
        );
      }
    } while (!r.applied && micro < 4 * this.o.accumulate);
    this.step++;
    this.lastNll = r.nll;
    const line = {
      step: this.step,
      samples: this.samplesSeen,
      lr,
      loss: r.loss,
      nll: r.nll,
      aux: r.aux,
      grad_norm: r.gradNorm,
      skipped: r.skipped,
      samples_per_s: Math.round(this.samplesPerSecond),
      elapsed_s: this.elapsed(),
    };
    fs.appendFileSync(this.metricsFile, JSON.stringify(line) + '\n');
    return r;
  }

  async validate(): Promise<void> {
    if (!this.validFiles.length) return;
    const log = this.o.onLog ?? (() => {});
    const cfg = this.o.model;
    // The training segment keeps validation's tensors small beside the trainer's own (WaveNet's
    // default of 4,096-long rows next to training aborted wasm's 4 GB heap); transformers always
    // score in their own segment.
    const r = await evaluateCodes(cfg, this.trainer.exportParams(), this.validFiles, {
      batch: Math.min(8, this.validFiles.length),
      length: cfg.segment,
    });
    this.validNats = r.nats;
    const line = {
      step: this.step,
      samples: this.samplesSeen,
      elapsed_s: this.elapsed(),
      valid_nll: r.nats,
      valid_bits: r.bits,
      valid_samples: r.totalSamples,
    };
    fs.appendFileSync(this.metricsFile, JSON.stringify(line) + '\n');
    log(
      `step ${this.step}: validation NLL ${r.nats.toFixed(4)} nats (${r.bits.toFixed(4)} bits) over ` +
        `${r.totalSamples} samples; unigram ${this.unigram.toFixed(4)}`,
    );
    writeCurves(this.o.run, this.metricsFile, this.unigram);
  }

  /** Everything needed to continue exactly, in one atomically written file; then the weights file. */
  async checkpoint(file: string): Promise<void> {
    const exported = this.trainer.exportState();
    const params = this.trainer.exportParams();
    const all = new Map(params);
    exported.model.tensors.forEach((t, i) => all.set(`state/${String(i).padStart(4, '0')}`, t));
    const state: TrainState = {
      step: this.step,
      samplesSeen: this.samplesSeen,
      skippedSteps: this.skippedSteps,
      elapsedSeconds: this.elapsed(),
      stream: this.stream.state(),
      rng: exported.rng,
      modelState: { batch: exported.model.batch, counters: exported.model.counters },
      train: trainOptionsOf(this.o),
    };
    saveCheckpoint(file, {
      model: this.o.model.kind,
      config: this.o.model,
      params: all,
      optimizer: await exportAdam(this.trainer.optimizer),
      state,
    });
    saveModel(this.o.run, this.o.model, params);
  }

  writeCurves(): void {
    writeCurves(this.o.run, this.metricsFile, this.unigram);
  }

  close(): void {
    this.stream.close();
    this.trainer.dispose();
  }
}
