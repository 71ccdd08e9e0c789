/**
 * One invocation of a training run: the model's weights and optimizer (`TrainStep`), the batch
 * stream, the counters a checkpoint carries, and the three things the loop does besides stepping:
 * log metrics, validate, checkpoint. `train()` (trainer.ts) drives it.
 */
import { machineDescription } from '../util/machine.js';
import { posixRelative } from '../util/paths.js';
import fs from 'node:fs';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import {
  BatchConfigError,
  CropStream,
  type CropStreamState,
  SegmentStream,
  type SegmentStreamState,
} from '../data/batches.js';
import { readManifest, splitSource } from '../data/manifest.js';
import { corpusStats } from '../data/stats.js';
import { PARAMS_FILE, saveModel } from '../models/model-files.js';
import { initParams } from '../models/param-spec.js';
import { familyOf, type ModelConfig, paramSpecOf } from '../models/registry.js';
import type { ExportedState } from '../models/sequence-model.js';
import { writeFileAtomic } from '../util/atomic.js';
import { CHECKPOINT_FILE, type loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { readMetrics, writeCurves } from './curves.js';
import { openStepEngine, resolveEngine, type StepEngine } from './step-engine.js';
import { openValidator, type Validator } from './validation.js';
import type { StepResult } from './tf-step.js';
import { METRICS_FILE, restartHint } from './run-folder.js';
import { RunError, type TrainOptions } from './run-options.js';
import {
  checkTrainSplit,
  shortSplitWarning,
  type SplitPrint,
  type TrainCorpus,
  trainSplitPrint,
  validationSet,
} from './train-corpus.js';

/** What a checkpoint holds besides tensors: enough to continue the run exactly. */
export interface TrainState {
  /** training wall time over every session of this run, for reports (absent in older checkpoints) */
  elapsedSeconds?: number;
  step: number;
  samplesSeen: number;
  skippedSteps: number;
  stream: SegmentStreamState | CropStreamState;
  rng: ReturnType<StepEngine['exportState']>['rng'];
  modelState: Omit<ExportedState, 'tensors'>;
  train: Omit<
    TrainOptions,
    'onStep' | 'onLog' | 'stopSignal' | 'minutes' | 'stopAfter' | 'data' | 'run' | 'model' | 'restart'
  >;
  /** the training split the stream positions refer to (absent in older checkpoints) */
  trainSplit?: SplitPrint;
  /** unigram entropy of the training codes, for the summary of a finished run (absent in older checkpoints) */
  unigramNats?: number;
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

export class TrainingRun {
  step: number;
  samplesSeen: number;
  skippedSteps: number;
  validNats: number | null = null;
  lastNll: number | null = null;
  interrupted = false;
  readonly prior?: TrainState;
  readonly unigram: number;
  private trainer!: StepEngine;
  private validator: Validator | null = null;
  private readonly stream: SegmentStream | CropStream;
  private readonly validFiles: { path: string; codes: Uint8Array }[];
  private readonly metricsFile: string;
  private readonly ckptFile: string;
  /** the step of the last checkpoint on disk, for messages */
  private savedStep: number;
  private readonly t0 = Date.now();
  private tokensThisRun = 0;

  /**
   * Sets up weights (fresh, or the checkpoint's), optimizer moments, stream position, RNG and
   * carried state; then saves a fresh run's step-0 checkpoint, writes train.json and drops metric
   * lines the checkpoint does not cover.
   */
  static async open(o: TrainOptions, corpus: TrainCorpus, resumed: Resumed | null): Promise<TrainingRun> {
    const log = o.onLog ?? (() => {});
    const manifest = readManifest(corpus.dir);
    const source = splitSource(corpus.dir, manifest, 'train');
    const samples = source.files.reduce((a, f) => a + f.length, 0);
    if (samples < 2) throw new RunError(`corpus ${corpus.dir} has no training audio`);
    const prior = resumed?.state as TrainState | undefined;
    const split = trainSplitPrint(manifest);
    // Older checkpoints record no split; then the corpus kept from before this prepare stands for it.
    const was = prior?.trainSplit ?? (corpus.kept ? trainSplitPrint(readManifest(corpus.kept)) : undefined);
    if (prior && was) checkTrainSplit(o.run, corpus.dir, split, was, prior.step);
    const warning = shortSplitWarning(corpus.dir, samples, familyOf(o.model).trainingWindows(o.model), o.batch);
    if (warning) log(warning);
    const unigram = corpusStats(corpus.dir, manifest).find((s) => s.split === 'train')!.entropyNats;
    const run = new TrainingRun(o, corpus.dir, source, split, unigram, resumed);
    try {
      const specs = paramSpecOf(o.model);
      const init = resumed ? resumed.params : initialWeights(o.model, o.seed);
      run.trainer = await openStepEngine(o, new Map(specs.map((s) => [s.name, init.get(s.name)!])));
      log(`training on ${run.trainer.summary}`);
      if (resumed && run.prior) {
        await run.trainer.importOptimizer(resumed.optimizer);
        const tensors = [...resumed.params.keys()]
          .filter((k) => k.startsWith('state/'))
          .sort()
          .map((k) => resumed.params.get(k)!);
        run.trainer.importState({ model: { ...run.prior.modelState, tensors }, rng: run.prior.rng });
      }
      await run.begin();
    } catch (e) {
      await run.close();
      throw e;
    }
    return run;
  }

  /** The run's first writes: from here on the folder has a checkpoint. */
  private async begin(): Promise<void> {
    // A fresh run saves its step-0 state first, so weights or metrics beside no checkpoint can only
    // mean a lost checkpoint (refused), never a run killed before its first save.
    if (!this.prior) await this.checkpoint({ weights: false });
    // Relative to the run folder, so a run folder moved or committed with its corpus beside it still finds it.
    const corpusFromRun = posixRelative(this.o.run, this.corpus);
    const engine = resolveEngine(this.o);
    const record = {
      ...trainOptionsOf(this.o),
      corpus: corpusFromRun,
      engine,
      backend: tf.getBackend(),
      machine: machineDescription(),
    };
    this.written('train.json', () =>
      writeFileAtomic(path.join(this.o.run, 'train.json'), JSON.stringify(record, null, 2) + '\n'),
    );
    // Lines written after the checkpoint we resume from (a kill between checkpoints) are replayed: drop them.
    if (fs.existsSync(this.metricsFile)) {
      const keep = readMetrics(this.metricsFile).filter((m) => m.step <= this.startStep);
      this.written(METRICS_FILE, () =>
        writeFileAtomic(this.metricsFile, keep.map((m) => JSON.stringify(m) + '\n').join('')),
      );
    }
  }

  private constructor(
    private readonly o: TrainOptions,
    private readonly corpus: string,
    source: ReturnType<typeof splitSource>,
    private readonly split: SplitPrint,
    unigram: number,
    resumed: Resumed | null,
  ) {
    const cfg = o.model;
    this.prior = resumed?.state as TrainState | undefined;
    this.unigram = unigram;
    this.ckptFile = path.join(o.run, CHECKPOINT_FILE);
    this.savedStep = this.prior?.step ?? 0;
    // Before the trainer: a stream that cannot resume must not leave tensors behind.
    try {
      this.stream = batchStream(cfg, o, source, this.prior);
    } catch (e) {
      if (this.prior && e instanceof BatchConfigError)
        throw new RunError(
          `cannot resume ${o.run} from step ${this.prior.step} on ${corpus}: ${e.message}. A run continues ` +
            `only on the corpus and --batch it started with; use those, or pass ${restartHint(o.run)}.`,
        );
      throw e;
    }
    this.step = this.prior?.step ?? 0;
    this.samplesSeen = this.prior?.samplesSeen ?? 0;
    this.skippedSteps = this.prior?.skippedSteps ?? 0;
    this.validFiles = validationSet(corpus, o.validSamples);
    this.metricsFile = path.join(o.run, METRICS_FILE);
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
  async trainStep(lr: number): Promise<StepResult> {
    const log = this.o.onLog ?? (() => {});
    let r: StepResult;
    let micro = 0;
    do {
      const b = this.stream.next();
      this.trainer.setLearningRate(lr);
      r = await this.trainer.step({ inputs: b.inputs, targets: b.targets, mask: b.mask, reset: b.reset });
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
    this.appendMetrics(line);
    return r;
  }

  async validate(): Promise<void> {
    if (!this.validFiles.length) return;
    const log = this.o.onLog ?? (() => {});
    const cfg = this.o.model;
    // The training segment keeps validation's tensors small beside the trainer's own (WaveNet's
    // default of 4,096-long rows next to training aborted wasm's 4 GB heap); transformers always
    // score in their own segment.
    this.validator ??= openValidator(resolveEngine(this.o), { threads: this.o.threads, device: this.o.device });
    const r = await this.validator.run(cfg, this.trainer.exportParams(), this.validFiles, {
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
    this.appendMetrics(line);
    log(
      `step ${this.step}: validation NLL ${r.nats.toFixed(4)} nats (${r.bits.toFixed(4)} bits) over ` +
        `${r.totalSamples} samples; unigram ${this.unigram.toFixed(4)}`,
    );
    this.writeCurves();
  }

  /**
   * Everything needed to continue exactly, in one atomically written file, after the weights file.
   * Weights first: a kill between the two leaves weights ahead of the checkpoint, which resumes and
   * writes them again; the other order could leave a finished run's checkpoint beside stale weights.
   */
  async checkpoint(what: { weights: boolean } = { weights: true }): Promise<void> {
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
      trainSplit: this.split,
      unigramNats: this.unigram,
    };
    if (what.weights)
      this.written(`the weights (${PARAMS_FILE}, config.json)`, () => saveModel(this.o.run, this.o.model, params));
    // saveCheckpoint's own errors name the file and say the previous checkpoint is untouched.
    saveCheckpoint(this.ckptFile, {
      model: this.o.model.kind,
      config: this.o.model,
      params: all,
      optimizer: await this.trainer.exportOptimizer(),
      state,
    });
    this.savedStep = this.step;
  }

  writeCurves(): void {
    this.written('curves.svg/png', () => writeCurves(this.o.run, this.metricsFile, this.unigram));
  }

  private appendMetrics(line: object): void {
    this.written(METRICS_FILE, () => fs.appendFileSync(this.metricsFile, JSON.stringify(line) + '\n'));
  }

  /**
   * Runs a write into the run folder; a failure of the system (a full disk, a folder made read-only)
   * becomes an error that says what was being written and that the last checkpoint is whole. No
   * `cause`: the command line would word a wrapped ENOSPC generically instead of with this message.
   */
  private written(what: string, write: () => void): void {
    try {
      write();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw e;
      throw new RunError(
        `cannot write ${what} in ${this.o.run}: ${(e as Error).message}. ${CHECKPOINT_FILE} ` +
          `(step ${this.savedStep}) is untouched: free space (or fix the folder) and rerun the same command ` +
          'to resume from it.',
      );
    }
  }

  async close(): Promise<void> {
    this.stream.close();
    await this.trainer?.dispose();
    await this.validator?.dispose();
  }
}
