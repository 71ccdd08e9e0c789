/**
 * Whether, and from what, a run continues: its checkpoint when the model and the schedule's options
 * match it, a fresh start when the folder holds nothing a fresh start would overwrite, and otherwise
 * a refusal that says what is there and how to go on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE } from '../models/model-files.js';
import { CHECKPOINT_FILE, CheckpointError, loadCheckpoint } from './checkpoint.js';
import { restartHint, trainedLeftovers } from './run-folder.js';
import { RunError, type TrainOptions } from './run-options.js';
import { type Resumed, type TrainState, trainOptionsOf } from './training-run.js';

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

type Options = TrainState['train'];

/**
 * Options that shape the weights a run ends with: changing one mid-run gives a model no single
 * command describes, so a resumed run must keep them. --steps is not among them: extending a run
 * is common, and the schedule is a function of the current total.
 */
const SCHEDULE_OPTIONS: [keyof Options, string][] = [
  ['peakLr', '--lr'],
  ['minLr', '--min-lr'],
  ['warmup', '--warmup'],
  ['clip', '--clip'],
  ['accumulate', '--accumulate'],
  ['batch', '--batch'],
  ['seed', '--seed'],
];

/** Options that only decide when and how much to validate, and when to save: free to change. */
const FREE_OPTIONS: [keyof Options, string][] = [
  ['validEvery', '--valid-every'],
  ['validSamples', '--valid-samples'],
  ['checkpointEvery', '--checkpoint-every'],
];

/** The rule as --help states it, in lines. */
export const RESUME_RULE = [
  'Rerunning the same command resumes from checkpoint.safetensors. A resumed run keeps the options',
  'it started with: --lr, --min-lr, --warmup, --clip, --accumulate, --batch and --seed must match',
  'its checkpoint (a change is refused, naming each flag); --steps may grow or shrink (a run past',
  'its steps reruns as finished), and --valid-every, --valid-samples and --checkpoint-every may',
  "change (noted in the log). --restart starts over instead, moving the run's files into",
  '<run>/replaced-<time>/. A folder with weights or metrics but no checkpoint is refused.',
];

/** Each option that differs between the checkpoint (`was`) and now, as "--flag old -> new". */
export function optionChanges(was: Partial<Options>, now: Options): { refused: string[]; accepted: string[] } {
  const diff = (list: [keyof Options, string][]) =>
    list.flatMap(([key, flag]) =>
      was[key] !== undefined && was[key] !== now[key] ? [`${flag} ${was[key]} -> ${now[key]}`] : [],
    );
  return { refused: diff(SCHEDULE_OPTIONS), accepted: diff(FREE_OPTIONS) };
}

/** The checkpoint a run continues from, or null for a fresh run; refuses what would lose or mix runs. */
export function resumeFrom(o: TrainOptions, log: (s: string) => void): Resumed | null {
  const cfg = o.model;
  const ckptFile = path.join(o.run, CHECKPOINT_FILE);
  if (fs.existsSync(ckptFile)) {
    let resumed: Resumed;
    try {
      resumed = loadCheckpoint(ckptFile, { model: cfg.kind, config: cfg, ignore: FRESH_WEIGHT_FIELDS });
    } catch (e) {
      if (e instanceof CheckpointError)
        throw new RunError(`cannot resume ${o.run}: ${e.message}. Use another --run, or pass ${restartHint(o.run)}.`);
      throw e;
    }
    const prior = resumed.state as TrainState;
    // Checkpoints older than the options record cannot be checked.
    if (prior.train) {
      const { refused, accepted } = optionChanges(prior.train, trainOptionsOf(o));
      if (refused.length)
        throw new RunError(
          `cannot resume ${o.run} (step ${prior.step}) with other training options: ${refused.join(', ')} ` +
            '(checkpoint -> now). A run keeps the options it started with; rerun with its values, ' +
            `or pass ${restartHint(o.run)}.`,
        );
      for (const a of accepted) log(`note: ${a} on resume (accepted: it does not change the weights)`);
    }
    return resumed;
  }
  const configFile = path.join(o.run, CONFIG_FILE);
  if (fs.existsSync(configFile)) {
    let existing: unknown;
    try {
      existing = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new RunError(`${configFile} is unreadable (${(e as Error).message}); pass ${restartHint(o.run)}`);
    }
    if (JSON.stringify(withoutFreshWeightFields(existing)) !== JSON.stringify(withoutFreshWeightFields(cfg)))
      throw new RunError(
        `--run ${o.run} holds a different model (see its config.json) and no checkpoint; use another --run, ` +
          `or pass ${restartHint(o.run)}`,
      );
  }
  const left = trainedLeftovers(o.run);
  if (left.length)
    throw new RunError(
      `${o.run} holds ${left.join(' and ')} but no ${CHECKPOINT_FILE}: the run cannot be resumed, and a fresh ` +
        `start would overwrite them. Restore the checkpoint, use another --run, or pass ${restartHint(o.run)}.`,
    );
  return null;
}
