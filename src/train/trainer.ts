import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';

import { CropStream, type CropStreamState, SegmentStream, type SegmentStreamState } from '../data/batches.js';
import { filesOf, manifestPath, readManifest, splitSource } from '../data/manifest.js';
import { prepareCorpus } from '../data/prepare.js';
import { corpusStats } from '../data/stats.js';
import { initParams } from '../models/param-spec.js';
import { familyOf, type ModelConfig, paramSpecOf } from '../models/registry.js';
import { saveModel } from '../models/model-files.js';
import type { ExportedState } from '../models/sequence-model.js';
import { evaluateCodes } from '../infer/evaluate.js';
import { writeFileAtomic } from '../util/atomic.js';
import { exportAdam, importAdam } from './adam-state.js';
import { CHECKPOINT_FILE, CheckpointError, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { readMetrics, writeCurves } from './curves.js';
import { learningRate, type ScheduleConfig, validateSchedule } from './schedule.js';
import { TrainStep } from './tf-step.js';
import { UserError } from '../util/errors.js';

export interface TrainOptions {
  /** a prepared corpus, or audio folders/files to prepare into <run>/corpus */
  data: string[];
  run: string;
  model: ModelConfig;
  /** rows per step */
  batch: number;
  /** total optimizer steps of the run (the schedule's length); a resumed run continues to it */
  steps: number;
  /** stop this invocation after this many minutes (checkpointed; rerun to continue) */
  minutes?: number;
  /** stop this invocation after this many steps (checkpointed; rerun to continue) */
  stopAfter?: number;
  peakLr: number;
  minLr: number;
  warmup: number;
  clip: number;
  accumulate: number;
  validEvery: number;
  /** cap on validation samples, so validation stays cheap on CPU */
  validSamples: number;
  checkpointEvery: number;
  seed: number;
  onStep?: (p: TrainProgress) => void;
  onLog?: (line: string) => void;
  /** set by a signal handler: the loop checkpoints and returns */
  stopSignal?: { stop: boolean };
}

export interface TrainProgress {
  step: number;
  steps: number;
  samplesPerSecond: number;
  loss: number;
  nll: number;
  lr: number;
}

export interface TrainSummary {
  run: string;
  step: number;
  finished: boolean;
  interrupted: boolean;
  resumedFrom: number | null;
  skippedSteps: number;
  lastTrainNll: number | null;
  validNats: number | null;
  unigramNats: number;
  samplesPerSecond: number;
}

/**
 * Config fields that only decide how fresh weights are drawn. A resumed run never draws them again,
 * so they are left out when a run folder is matched against the model asked for (WaveNet configs
 * written before `init` existed have none).
 */
const FRESH_WEIGHT_FIELDS = ['init'] as const;

function withoutFreshWeightFields(c: unknown): unknown {
  if (!c || typeof c !== 'object') return c;
  return Object.fromEntries(Object.entries(c).filter(([k]) => !(FRESH_WEIGHT_FIELDS as readonly string[]).includes(k)));
}

export class RunError extends UserError {}

interface TrainState {
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

/** Where the corpus is: the data itself when it is one, else <run>/corpus, prepared (incrementally). */
async function resolveCorpus(data: string[], run: string, log: (s: string) => void): Promise<string> {
  if (data.length === 1 && fs.existsSync(manifestPath(data[0]))) return data[0];
  const out = path.join(run, 'corpus');
  log(`preparing ${data.join(', ')} into ${out} (cached: unchanged files are not decoded again)`);
  const r = await prepareCorpus({ inputs: data, out });
  if (r.manifest.files.length === 0)
    throw new RunError(
      `no decodable audio in ${data.join(', ')}${r.skipped.length ? ` (${r.skipped.length} file(s) skipped: ${r.skipped[0].source}: ${r.skipped[0].reason})` : ''}`,
    );
  return out;
}

/**
 * Train a model into a run directory, resuming from its checkpoint when there is one. Everything a
 * run needs to continue exactly — weights, Adam moments, step, stream positions, RNG and carried
 * memories — is in one atomically written checkpoint.
 */
export async function train(o: TrainOptions): Promise<TrainSummary> {
  const log = o.onLog ?? (() => {});
  const schedule: ScheduleConfig = {
    warmupSteps: Math.min(o.warmup, o.steps),
    totalSteps: o.steps,
    minLr: o.minLr,
    peakLr: o.peakLr,
  };
  validateSchedule(schedule);
  if (fs.existsSync(o.run) && !fs.statSync(o.run).isDirectory())
    throw new RunError(`--run ${o.run} exists and is not a folder`);
  fs.mkdirSync(o.run, { recursive: true });
  const ckptFile = path.join(o.run, CHECKPOINT_FILE);
  const cfg = o.model;

  let resumed: ReturnType<typeof loadCheckpoint> | null = null;
  if (fs.existsSync(ckptFile)) {
    try {
      resumed = loadCheckpoint(ckptFile, { model: cfg.kind, config: cfg, ignore: FRESH_WEIGHT_FIELDS });
    } catch (e) {
      if (e instanceof CheckpointError)
        throw new RunError(
          `cannot resume ${o.run}: ${e.message}. Use another --run, or remove the folder to start over.`,
        );
      throw e;
    }
  } else if (fs.existsSync(path.join(o.run, 'config.json'))) {
    const existing = JSON.parse(fs.readFileSync(path.join(o.run, 'config.json'), 'utf8'));
    if (JSON.stringify(withoutFreshWeightFields(existing)) !== JSON.stringify(withoutFreshWeightFields(cfg)))
      throw new RunError(
        `--run ${o.run} holds a different model (see its config.json) and no checkpoint; use another --run`,
      );
  }

  const corpus = await resolveCorpus(o.data, o.run, log);
  const manifest = readManifest(corpus);
  const trainSrc = splitSource(corpus, manifest, 'train');
  if (trainSrc.files.reduce((a, f) => a + f.length, 0) < 2)
    throw new RunError(`corpus ${corpus} has no training audio`);
  const unigram = corpusStats(corpus, manifest).find((s) => s.split === 'train')!.entropyNats;
  const prior = resumed?.state as TrainState | undefined;

  const specs = paramSpecOf(cfg);
  const init = resumed
    ? resumed.params
    : (() => {
        const v = initParams(specs, o.seed, cfg.initStd);
        return new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }]));
      })();
  const modelParams = new Map(specs.map((s) => [s.name, init.get(s.name)!]));
  const trainer = new TrainStep(cfg, modelParams, o.batch, {
    lr: o.peakLr,
    clip: o.clip,
    seed: o.seed,
    accumulate: o.accumulate,
  });
  const windows = familyOf(cfg).trainingWindows(cfg);
  const stream =
    windows.kind === 'crops'
      ? new CropStream(
          trainSrc,
          { batch: o.batch, receptiveField: windows.receptiveField, targetLength: windows.targets, seed: o.seed },
          prior?.stream as CropStreamState | undefined,
        )
      : new SegmentStream(
          trainSrc,
          { batch: o.batch, segment: windows.segment },
          prior?.stream as SegmentStreamState | undefined,
        );
  if (resumed && prior) {
    await importAdam(trainer.optimizer, resumed.optimizer);
    const tensors = [...resumed.params.keys()]
      .filter((k) => k.startsWith('state/'))
      .sort()
      .map((k) => resumed!.params.get(k)!);
    trainer.importState({ model: { ...prior.modelState, tensors }, rng: prior.rng });
  } else {
    saveModel(o.run, cfg, trainer.exportParams());
  }
  // Relative to the run folder, so a run folder moved or committed with its corpus beside it still finds it.
  const corpusFromRun = path.relative(path.resolve(o.run), path.resolve(corpus)).split(path.sep).join('/');
  writeFileAtomic(
    path.join(o.run, 'train.json'),
    JSON.stringify({ ...trainOptionsOf(o), corpus: corpusFromRun, backend: tf.getBackend() }, null, 2) + '\n',
  );

  const metricsFile = path.join(o.run, 'metrics.jsonl');
  // Lines written after the checkpoint we resume from (a kill between checkpoints) are replayed: drop them.
  if (fs.existsSync(metricsFile)) {
    const keep = readMetrics(metricsFile).filter((m) => m.step <= (prior?.step ?? 0));
    writeFileAtomic(metricsFile, keep.map((m) => JSON.stringify(m) + '\n').join(''));
  }
  let step = prior?.step ?? 0;
  let samplesSeen = prior?.samplesSeen ?? 0;
  let skippedSteps = prior?.skippedSteps ?? 0;
  const validFiles = validationSet(corpus, o.validSamples);
  let validNats: number | null = null;
  let lastNll: number | null = null;
  const t0 = Date.now();
  const elapsed = () => Math.round(((prior?.elapsedSeconds ?? 0) + (Date.now() - t0) / 1000) * 10) / 10;
  let tokensThisRun = 0;
  let interrupted = false;

  const checkpoint = async () => {
    const exported = trainer.exportState();
    const params = trainer.exportParams();
    const all = new Map(params);
    exported.model.tensors.forEach((t, i) => all.set(`state/${String(i).padStart(4, '0')}`, t));
    const state: TrainState = {
      step,
      samplesSeen,
      skippedSteps,
      elapsedSeconds: elapsed(),
      stream: stream.state(),
      rng: exported.rng,
      modelState: { batch: exported.model.batch, counters: exported.model.counters },
      train: trainOptionsOf(o),
    };
    saveCheckpoint(ckptFile, {
      model: cfg.kind,
      config: cfg,
      params: all,
      optimizer: await exportAdam(trainer.optimizer),
      state,
    });
    saveModel(o.run, cfg, params);
  };
  const validate = async () => {
    if (!validFiles.length) return;
    // WaveNet scores any segment length exactly; the training segment keeps validation's tensors
    // small beside the trainer's own (4,096-long rows next to training aborted wasm's 4 GB heap).
    const r = await evaluateCodes(cfg, trainer.exportParams(), validFiles, {
      batch: Math.min(8, validFiles.length),
      length: cfg.segment,
    });
    validNats = r.nats;
    fs.appendFileSync(
      metricsFile,
      JSON.stringify({
        step,
        samples: samplesSeen,
        elapsed_s: elapsed(),
        valid_nll: r.nats,
        valid_bits: r.bits,
        valid_samples: r.totalSamples,
      }) + '\n',
    );
    log(
      `step ${step}: validation NLL ${r.nats.toFixed(4)} nats (${r.bits.toFixed(4)} bits) over ${r.totalSamples} samples; unigram ${unigram.toFixed(4)}`,
    );
    writeCurves(o.run, metricsFile, unigram);
  };

  try {
    while (step < o.steps) {
      // Steps are synchronous tfjs work: yield to the event loop so a Ctrl-C handler can run.
      await new Promise((r) => setImmediate(r));
      const startStep = prior?.step ?? 0;
      if (
        o.stopSignal?.stop ||
        (o.minutes !== undefined && (Date.now() - t0) / 60000 >= o.minutes) ||
        (o.stopAfter !== undefined && step - startStep >= o.stopAfter)
      ) {
        interrupted = true;
        break;
      }
      let r;
      let micro = 0;
      // The rate this update applies; metrics.jsonl logs it beside the step it applied to.
      const lr = learningRate(step, schedule);
      do {
        const b = stream.next();
        trainer.setLearningRate(lr);
        r = trainer.step({ inputs: b.inputs, targets: b.targets, mask: b.mask, reset: b.reset });
        tokensThisRun += b.tokens;
        samplesSeen += b.tokens;
        micro++;
        if (r.skipped) {
          skippedSteps++;
          log(
            `step ${step}: non-finite loss or gradient (loss ${r.loss}); step skipped, weights untouched (${skippedSteps} so far)`,
          );
        }
      } while (!r.applied && micro < 4 * o.accumulate);
      step++;
      lastNll = r.nll;
      const rate = tokensThisRun / Math.max(1e-3, (Date.now() - t0) / 1000);
      fs.appendFileSync(
        metricsFile,
        JSON.stringify({
          step,
          samples: samplesSeen,
          lr,
          loss: r.loss,
          nll: r.nll,
          aux: r.aux,
          grad_norm: r.gradNorm,
          skipped: r.skipped,
          samples_per_s: Math.round(rate),
          elapsed_s: elapsed(),
        }) + '\n',
      );
      o.onStep?.({ step, steps: o.steps, samplesPerSecond: rate, loss: r.loss, nll: r.nll, lr });
      if (step % o.validEvery === 0 || step === o.steps) await validate();
      if (step % o.checkpointEvery === 0 || step === o.steps) await checkpoint();
    }
    if (interrupted && !trainer.midCycle) await checkpoint();
  } finally {
    stream.close();
    trainer.dispose();
  }
  writeCurves(o.run, metricsFile, unigram);
  return {
    run: o.run,
    step,
    finished: step >= o.steps,
    interrupted,
    resumedFrom: prior?.step ?? null,
    skippedSteps,
    lastTrainNll: lastNll,
    validNats,
    unigramNats: unigram,
    samplesPerSecond: tokensThisRun / Math.max(1e-3, (Date.now() - t0) / 1000),
  };
}

function trainOptionsOf(o: TrainOptions): TrainState['train'] {
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
