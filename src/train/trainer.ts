import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

import { CONFIG_FILE, PARAMS_FILE, saveModel } from '../models/model-files.js';
import { paramSpecOf } from '../models/registry.js';
import { removeStaleTemps } from '../util/atomic.js';
import { lockFolder } from '../util/folder-lock.js';
import { readMetrics } from './curves.js';
import { resumeFrom } from './resume.js';
import { METRICS_FILE, setAside } from './run-folder.js';
import { RunError, type TrainOptions, type TrainSummary } from './run-options.js';
import { learningRate, type ScheduleConfig, validateSchedule } from './schedule.js';
import { removeStaleSnapshots, resolveCorpus } from './train-corpus.js';
import { type Resumed, type TrainState, TrainingRun } from './training-run.js';
import { gb, trainingMemory } from './memory-estimate.js';
import { resolveEngine } from './step-engine.js';

/**
 * Train a model into a run directory, resuming from its checkpoint when there is one. Everything a
 * run needs to continue exactly — weights, Adam moments, step, stream positions, RNG and carried
 * memories — is in one atomically written checkpoint. The run folder is locked for the whole call:
 * a second trainer on it is refused, and a lock left by a killed one is taken over.
 */
export async function train(o: TrainOptions): Promise<TrainSummary> {
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
  const lock = lockFolder(o.run, 'train');
  try {
    return await trainLocked(o, schedule);
  } finally {
    lock.release();
  }
}

async function trainLocked(o: TrainOptions, schedule: ScheduleConfig): Promise<TrainSummary> {
  const log = o.onLog ?? (() => {});
  // Left by writers killed between create and rename; at paper scale each is a whole checkpoint.
  const stale = removeStaleTemps(o.run);
  if (stale.length) log(`removed ${stale.length} temporary file(s) left by killed writers: ${stale.join(', ')}`);
  removeStaleSnapshots(o.run);
  if (o.restart) {
    const aside = setAside(o.run);
    if (aside) log(`--restart: moved ${aside.moved.join(', ')} into ${aside.dir}`);
  }
  const resumed = resumeFrom(o, log);
  const prior = resumed?.state as TrainState | undefined;
  if (resumed && prior!.step >= o.steps) return alreadyFinished(o, resumed, log);
  // Resolved once: the memory check, the step engine and train.json all follow this choice, and a
  // fallback to tfjs is said once.
  o = { ...o, engine: resolveEngine(o) };
  checkMemory(o);
  const corpus = await resolveCorpus(o.data, o.run, prior?.step ?? null, log);
  const run = await TrainingRun.open(o, corpus, resumed);
  try {
    while (run.step < o.steps) {
      // Steps are synchronous tfjs work: yield to the event loop so a Ctrl-C handler can run.
      await new Promise((r) => setImmediate(r));
      if (
        o.stopSignal?.stop ||
        (o.minutes !== undefined && run.minutes >= o.minutes) ||
        (o.stopAfter !== undefined && run.step - run.startStep >= o.stopAfter)
      ) {
        run.interrupted = true;
        break;
      }
      // The rate this update applies; metrics.jsonl logs it beside the step it applied to.
      const lr = learningRate(run.step, schedule);
      const r = await run.trainStep(lr);
      o.onStep?.({
        step: run.step,
        steps: o.steps,
        samplesPerSecond: run.samplesPerSecond,
        loss: r.loss,
        nll: r.nll,
        lr,
      });
      if (run.step % o.validEvery === 0 || run.step === o.steps) await run.validate();
      if (run.step % o.checkpointEvery === 0 || run.step === o.steps) await run.checkpoint();
    }
    if (run.interrupted && !run.midCycle) await run.checkpoint();
  } finally {
    await run.close();
  }
  run.writeCurves();
  return summaryOf(o, run);
}

/**
 * Refuses a batch whose training step would not fit the backend's memory (tfjs-wasm's 4 GB heap
 * aborts mid-step otherwise), naming the largest batch that fits.
 */
function checkMemory(o: TrainOptions): void {
  // The estimate is calibrated for tfjs; onnxruntime keeps its own arena in host memory.
  if (o.engine === 'onnxruntime') return;
  const backend = tf.getBackend();
  const e = trainingMemory(o.model, o.batch, backend);
  if (e.bytes <= e.limit) return;
  const fits =
    e.largestBatch >= 1
      ? `the largest batch that fits is ${e.largestBatch}: use --batch ${e.largestBatch} (or --accumulate to keep ` +
        'the samples per update)'
      : 'not even batch 1 fits: use a smaller model, or the tensorflow backend (see README, Backends and GPU)';
  throw new RunError(
    `a training step of this model at batch ${o.batch} needs about ${gb(e.bytes)} GB, more than ${e.limitName}; ` +
      fits,
  );
}

function summaryOf(o: TrainOptions, run: TrainingRun): TrainSummary {
  return {
    run: o.run,
    step: run.step,
    finished: run.step >= o.steps,
    alreadyFinished: false,
    interrupted: run.interrupted,
    resumedFrom: run.prior?.step ?? null,
    skippedSteps: run.skippedSteps,
    lastTrainNll: run.lastNll,
    validNats: run.validNats,
    unigramNats: run.unigram,
    samplesPerSecond: run.samplesPerSecond,
  };
}

/**
 * A run that has reached its steps needs neither its corpus nor its stream state: rerunning it
 * (a pipeline, after audio was added) trains nothing, writes nothing and reports it finished.
 */
function alreadyFinished(o: TrainOptions, resumed: Resumed, log: (s: string) => void): TrainSummary {
  const prior = resumed.state as TrainState;
  // Weights are written before each checkpoint; only a hand-deleted file can be missing.
  if (!fs.existsSync(path.join(o.run, PARAMS_FILE)) || !fs.existsSync(path.join(o.run, CONFIG_FILE))) {
    const params = new Map(paramSpecOf(o.model).map((s) => [s.name, resumed.params.get(s.name)!]));
    saveModel(o.run, o.model, params);
    log(`restored ${PARAMS_FILE} and ${CONFIG_FILE} from the checkpoint`);
  }
  const metrics = readMetrics(path.join(o.run, METRICS_FILE)).filter((m) => m.step <= prior.step);
  const last = <K extends 'nll' | 'valid_nll'>(k: K) => metrics.filter((m) => m[k] !== undefined).pop()?.[k] ?? null;
  return {
    run: o.run,
    step: prior.step,
    finished: true,
    alreadyFinished: true,
    interrupted: false,
    resumedFrom: prior.step,
    skippedSteps: prior.skippedSteps,
    lastTrainNll: last('nll'),
    validNats: last('valid_nll'),
    unigramNats: prior.unigramNats ?? null,
    samplesPerSecond: 0,
  };
}
