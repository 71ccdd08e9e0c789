import fs from 'node:fs';
import path from 'node:path';

import { manifestPath } from '../data/manifest.js';
import { prepareCorpus } from '../data/prepare.js';
import { CHECKPOINT_FILE, CheckpointError, loadCheckpoint } from './checkpoint.js';
import { RunError, type TrainOptions, type TrainSummary } from './run-options.js';
import { learningRate, type ScheduleConfig, validateSchedule } from './schedule.js';
import { type Resumed, TrainingRun } from './training-run.js';

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

/**
 * The checkpoint a run continues from, or null for a fresh run. A folder holding another model, or
 * a checkpoint that cannot be read, is refused rather than overwritten.
 */
function resumeFrom(o: TrainOptions, ckptFile: string): Resumed | null {
  const cfg = o.model;
  if (fs.existsSync(ckptFile)) {
    try {
      return loadCheckpoint(ckptFile, { model: cfg.kind, config: cfg, ignore: FRESH_WEIGHT_FIELDS });
    } catch (e) {
      if (e instanceof CheckpointError)
        throw new RunError(
          `cannot resume ${o.run}: ${e.message}. Use another --run, or remove the folder to start over.`,
        );
      throw e;
    }
  }
  if (fs.existsSync(path.join(o.run, 'config.json'))) {
    const existing = JSON.parse(fs.readFileSync(path.join(o.run, 'config.json'), 'utf8'));
    if (JSON.stringify(withoutFreshWeightFields(existing)) !== JSON.stringify(withoutFreshWeightFields(cfg)))
      throw new RunError(
        `--run ${o.run} holds a different model (see its config.json) and no checkpoint; use another --run`,
      );
  }
  return null;
}

/** Where the corpus is: the data itself when it is one, else <run>/corpus, prepared (incrementally). */
async function resolveCorpus(data: string[], run: string, log: (s: string) => void): Promise<string> {
  if (data.length === 1 && fs.existsSync(manifestPath(data[0]))) return data[0];
  const out = path.join(run, 'corpus');
  log(`preparing ${data.join(', ')} into ${out} (cached: unchanged files are not decoded again)`);
  const r = await prepareCorpus({ inputs: data, out });
  if (r.manifest.files.length === 0)
    throw new RunError(
      `no decodable audio in ${data.join(', ')}` +
        (r.skipped.length
          ? ` (${r.skipped.length} file(s) skipped: ${r.skipped[0].source}: ${r.skipped[0].reason})`
          : ''),
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
  const resumed = resumeFrom(o, ckptFile);
  const corpus = await resolveCorpus(o.data, o.run, log);
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
      const r = run.trainStep(lr);
      o.onStep?.({
        step: run.step,
        steps: o.steps,
        samplesPerSecond: run.samplesPerSecond,
        loss: r.loss,
        nll: r.nll,
        lr,
      });
      if (run.step % o.validEvery === 0 || run.step === o.steps) await run.validate();
      if (run.step % o.checkpointEvery === 0 || run.step === o.steps) await run.checkpoint(ckptFile);
    }
    if (run.interrupted && !run.midCycle) await run.checkpoint(ckptFile);
  } finally {
    run.close();
  }
  run.writeCurves();
  return {
    run: o.run,
    step: run.step,
    finished: run.step >= o.steps,
    interrupted: run.interrupted,
    resumedFrom: run.prior?.step ?? null,
    skippedSteps: run.skippedSteps,
    lastTrainNll: run.lastNll,
    validNats: run.validNats,
    unigramNats: run.unigram,
    samplesPerSecond: run.samplesPerSecond,
  };
}
