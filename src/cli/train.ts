import type { Command } from 'commander';
import { backendSummary, type BackendName, initBackend } from '../engine/backend.js';
import { describeModel } from '../models/registry.js';
import { RESUME_RULE } from '../train/resume.js';
import type { TrainSummary } from '../train/run-options.js';
import { train } from '../train/trainer.js';
import { loadConfig } from './model.js';
import { checkBackendFlag, floatArg, intArg, UsageError } from './options.js';
import { Progress } from './progress.js';
import { DEVICE_HELP, type OrtDevice } from '../infer/ort-executor.js';
import { checkEngineFlags } from './eval.js';

export interface TrainCliOptions {
  model: string;
  config?: string;
  run: string;
  steps: number;
  samples?: number;
  minutes?: number;
  stopAfter?: number;
  batch: number;
  lr: number;
  minLr: number;
  warmup: number;
  clip: number;
  accumulate: number;
  validEvery: number;
  validSamples: number;
  checkpointEvery: number;
  seed: number;
  backend: string;
  restart?: boolean;
  engine: string;
  threads?: number;
  device: string;
}

/** What `train` did, and the signal that stopped it early, if one did. */
export interface TrainResult extends TrainSummary {
  /** the run's total steps (--steps, or what --samples came to) */
  steps: number;
  stoppedBy: 'SIGINT' | 'SIGTERM' | null;
}

export const TRAIN_DEFAULTS = {
  steps: 1000,
  batch: 8,
  lr: 3e-4,
  minLr: 1e-6,
  warmup: 100,
  clip: 0.1,
  accumulate: 1,
  validEvery: 100,
  validSamples: 32000,
  checkpointEvery: 50,
  seed: 0,
  backend: 'auto',
  engine: 'auto',
  device: 'auto',
};

export function registerTrain(program: Command): void {
  program
    .command('train')
    .summary('train a model on audio folders or a prepared corpus (resumable)')
    .description(
      'Train a Compressive Transformer, Transformer-XL or WaveNet. <data> is a corpus made by `prepare`, ' +
        'or audio folders, prepared (and cached) into <run>/corpus first. Transformers read B contiguous ' +
        'streams segment by segment with memory carried; WaveNet trains on random crops. Adam with linear ' +
        'warm-up and cosine decay (paper: 1e-6 -> 3e-4 -> 1e-6), global-norm clipping (paper: 0.1).\n\n' +
        'The run folder holds config.json, weights.safetensors, checkpoint.safetensors, train.json, ' +
        'metrics.jsonl and curves.svg/png. Rerunning the same command resumes where it stopped; Ctrl-C ' +
        'saves a checkpoint and exits. One train at a time per run folder (it is locked). A run of another ' +
        'model, or trained results without their checkpoint, are refused rather than overwritten.',
    )
    .argument('<data...>', 'corpus folder, or audio folders/files')
    .requiredOption('--run <dir>', 'run folder (created, or resumed)')
    .option('-m, --model <preset>', 'model preset (see `ctspeech model --help`)', 'ct-cpu')
    .option('-c, --config <file>', 'model config JSON/YAML (overrides --model)')
    .option('--steps <n>', 'total optimizer steps of the run', intArg(1), TRAIN_DEFAULTS.steps)
    .option(
      '--samples <n>',
      'budget in training samples instead of steps (sets --steps to samples / (batch x segment x accumulate))',
      intArg(1),
    )
    .option('--minutes <m>', 'stop this invocation after m minutes (checkpointed)', floatArg(0.01, 1e6))
    .option('--stop-after <n>', 'stop this invocation after n steps (checkpointed; rerun to continue)', intArg(1))
    .option(
      '-b, --batch <n>',
      'parallel streams (transformers) or crops (WaveNet) per step',
      intArg(1, 4096),
      TRAIN_DEFAULTS.batch,
    )
    .option('--lr <rate>', 'peak learning rate', floatArg(1e-9, 1), TRAIN_DEFAULTS.lr)
    .option(
      '--min-lr <rate>',
      'learning rate at the start of warm-up and the end of decay',
      floatArg(1e-12, 1),
      TRAIN_DEFAULTS.minLr,
    )
    .option('--warmup <steps>', 'linear warm-up steps', intArg(0), TRAIN_DEFAULTS.warmup)
    .option('--clip <norm>', 'global gradient-norm clip (0 = off)', floatArg(0, 1e6), TRAIN_DEFAULTS.clip)
    .option(
      '--accumulate <k>',
      'update every k micro-batches (gradient accumulation)',
      intArg(1, 1024),
      TRAIN_DEFAULTS.accumulate,
    )
    .option(
      '--valid-every <steps>',
      'validation NLL every n steps (and at the end)',
      intArg(1),
      TRAIN_DEFAULTS.validEvery,
    )
    .option(
      '--valid-samples <n>',
      'samples of the valid split to score each time',
      intArg(2),
      TRAIN_DEFAULTS.validSamples,
    )
    .option(
      '--checkpoint-every <steps>',
      'checkpoint every n steps (and at the end, and on Ctrl-C)',
      intArg(1),
      TRAIN_DEFAULTS.checkpointEvery,
    )
    .option('--seed <n>', 'initialisation, data order and dropout seed', intArg(0), TRAIN_DEFAULTS.seed)
    .option('--backend <name>', 'tfjs engine: auto, tensorflow, wasm or cpu', TRAIN_DEFAULTS.backend)
    .option(
      '--engine <name>',
      'auto or onnxruntime (one traced graph per step: forward, reverse pass, clip and Adam; every ' +
        'model and option; 10x tfjs-wasm on CPU, and the GPU path), or tfjs (eager, its own autodiff, on ' +
        '--backend); a run resumes on either',
      TRAIN_DEFAULTS.engine,
    )
    .option('--threads <n>', 'onnxruntime: intra-op threads (default: all cores)', intArg(1))
    .option('--device <name>', DEVICE_HELP, TRAIN_DEFAULTS.device)
    .option(
      '--restart',
      "start over: move the run folder's files into <run>/replaced-<time>/ (never deleted) and train afresh",
    )
    .addHelpText(
      'after',
      `\nResuming:\n${RESUME_RULE.map((l) => `  ${l}\n`).join('')}` +
        '\nExamples:\n' +
        '  ctspeech train samples/speech --model ct-tiny --run runs/ct-tiny --steps 300\n' +
        '  ctspeech train corpora/librispeech --model ct-cpu --run runs/ct --minutes 30   # rerun to continue',
    )
    .action(async (data: string[], o: TrainCliOptions) => {
      await runTrain(data, o);
    });
}

export async function runTrain(data: string[], o: TrainCliOptions): Promise<TrainResult> {
  checkBackendFlag(o.backend);
  if (!['auto', 'tfjs', 'onnxruntime'].includes(o.engine))
    throw new UsageError(`--engine must be auto, tfjs or onnxruntime, got ${o.engine}`);
  checkEngineFlags({ engine: o.engine === 'auto' ? 'onnxruntime' : o.engine, device: o.device });
  if (o.minLr > o.lr) throw new UsageError(`--min-lr (${o.minLr}) must not exceed --lr (${o.lr})`);
  const cfg = loadConfig({ preset: o.model, config: o.config });
  // A sample budget is a step budget in disguise: every step scores batch x segment samples.
  const steps =
    o.samples !== undefined ? Math.max(1, Math.ceil(o.samples / (o.batch * cfg.segment * o.accumulate))) : o.steps;
  const info = await initBackend(o.backend as BackendName | 'auto');
  console.log(`ctspeech train: ${describeModel(cfg)}`);
  // On onnxruntime the tfjs backend only initialises weights; the run logs the session it trains on.
  if (o.engine === 'tfjs') console.log(`  ${backendSummary(info)}`);
  const stop = { stop: false };
  let stoppedBy: TrainResult['stoppedBy'] = null;
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    if (stop.stop) process.exit(130); // a second Ctrl-C: the user insists
    stop.stop = true;
    stoppedBy = sig;
    process.stderr.write(
      `\n${sig}: finishing this step and saving a checkpoint (Ctrl-C again to abort without saving)\n`,
    );
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const bar = new Progress('train');
  try {
    const s = await train({
      data,
      run: o.run,
      model: cfg,
      batch: o.batch,
      steps,
      minutes: o.minutes,
      stopAfter: o.stopAfter,
      peakLr: o.lr,
      minLr: o.minLr,
      warmup: o.warmup,
      clip: o.clip,
      accumulate: o.accumulate,
      validEvery: o.validEvery,
      validSamples: o.validSamples,
      checkpointEvery: o.checkpointEvery,
      seed: o.seed,
      restart: o.restart,
      engine: o.engine as 'auto' | 'tfjs' | 'onnxruntime',
      threads: o.threads,
      device: o.device as OrtDevice,
      stopSignal: stop,
      onStep: (p) =>
        bar.update(
          p.step,
          p.steps,
          `${Math.round(p.samplesPerSecond)} samples/s  loss ${p.loss.toFixed(4)}  ` +
            `nll ${p.nll.toFixed(4)}  lr ${p.lr.toExponential(2)}`,
        ),
      onLog: (line) => {
        bar.done();
        console.log(line);
      },
    });
    bar.done();
    const how = s.finished
      ? 'finished'
      : s.interrupted
        ? 'stopped (checkpoint saved; rerun the same command to resume)'
        : 'stopped';
    if (s.alreadyFinished)
      console.log(
        s.step === steps
          ? `already finished at step ${s.step} of ${steps}; nothing to train (a larger --steps continues the run)`
          : `already finished at step ${s.step}, past --steps ${steps}; nothing to train`,
      );
    else
      console.log(
        `${how} at step ${s.step}${s.resumedFrom !== null ? ` (resumed from step ${s.resumedFrom})` : ''}; ` +
          `${Math.round(s.samplesPerSecond)} samples/s`,
      );
    if (s.validNats !== null)
      console.log(
        `validation NLL ${s.validNats.toFixed(4)} nats/sample (${(s.validNats / Math.LN2).toFixed(4)} bits)` +
          (s.unigramNats !== null ? `; unigram entropy ${s.unigramNats.toFixed(4)} nats` : ''),
      );
    if (s.skippedSteps) console.log(`${s.skippedSteps} step(s) skipped for non-finite loss or gradients`);
    console.log(`run folder: ${o.run} (curves.png, metrics.jsonl, weights.safetensors)`);
    return { ...s, steps, stoppedBy };
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}
