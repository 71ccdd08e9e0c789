/**
 * Run folders are never lost: one trainer per run (a lock that kill -9 does not leave blocking),
 * leftovers without a checkpoint refused, --restart moving files aside, schedule options checked
 * on resume, finished runs untouched by new audio, stale temporaries removed, a full disk reported
 * with the last checkpoint whole, and readers seeing whole files while a trainer checkpoints.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { writeWav } from '../src/audio/wav.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { initBackend } from '../src/engine/backend.js';
import { loadRun } from '../src/models/model-files.js';
import { modelPreset } from '../src/models/registry.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import type { TrainOptions } from '../src/train/run-options.js';
import { train } from '../src/train/trainer.js';
import { UserError } from '../src/util/errors.js';
import { CLI, REPO, SAMPLES, tempDir } from './helpers.js';

/** A few seconds of real speech as train/valid/test folders, so runs take seconds. */
async function smallAudio(seconds = 1.5): Promise<string> {
  const root = path.join(tempDir(), 'audio');
  for (const rel of ['train/vm-review.wav', 'train/vm-msginstruct.wav', 'valid/vm-tempgreeting2.wav']) {
    const a = await decodeAudio(path.join(SAMPLES, rel), 16000);
    fs.mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
    writeWav(path.join(root, rel), a.samples.subarray(0, Math.round(16000 * seconds)), 16000);
  }
  return root;
}

async function smallCorpus(): Promise<string> {
  const out = path.join(tempDir(), 'corpus');
  await prepareCorpus({ inputs: [await smallAudio()], out, workers: 1 });
  return out;
}

function opts(corpus: string, run: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data: [corpus],
    run,
    model: modelPreset('ct-tiny'),
    batch: 2,
    steps: 8,
    peakLr: 3e-3,
    minLr: 1e-5,
    warmup: 2,
    clip: 1,
    accumulate: 1,
    validEvery: 1000,
    validSamples: 2000,
    checkpointEvery: 2,
    seed: 1,
    ...over,
  };
}

const trainArgs = (data: string, run: string, ...more: string[]) => [
  'train',
  data,
  '--run',
  run,
  '--model',
  'ct-tiny',
  '--batch',
  '2',
  '--valid-every',
  '1000',
  '--valid-samples',
  '2000',
  ...more,
];

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, CI: '1' } });
}

interface Child {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();
after(() => running.forEach((c) => c.kill('SIGKILL')));

function start(args: string[]): Child {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, CI: '1' } });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

/** Polls until `cond` holds; fails (instead of hanging) if the child exits first. */
async function until(child: Child, cond: () => boolean): Promise<void> {
  let gone = false;
  void child.exited.then(() => (gone = true));
  while (!cond()) {
    if (gone) assert.fail(`the process exited before the awaited state:\n${child.out()}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

function metricLines(run: string): Record<string, number>[] {
  const file = path.join(run, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}

const trainSteps = (run: string) => metricLines(run).flatMap((m) => (m.nll !== undefined ? [m.step] : []));
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const ckptStep = (run: string) =>
  (loadCheckpoint(path.join(run, 'checkpoint.safetensors')).state as { step: number }).step;

test('one trainer per run folder: a second is refused with the lock; kill -9 leaves no blocking lock', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  const a = start(trainArgs(corpus, run, '--steps', '100000', '--checkpoint-every', '4'));
  await until(a, () => trainSteps(run).length >= 5);
  const b = cli(trainArgs(corpus, run, '--steps', '3'));
  assert.equal(b.status, 2, b.stdout + b.stderr);
  assert.match(b.stderr, new RegExp(`in use by process ${a.proc.pid}\\b.*train`));
  a.proc.kill('SIGKILL');
  await a.exited;
  assert.ok(fs.existsSync(path.join(run, '.lock')), 'the killed trainer left its lock file behind');
  const saved = ckptStep(run);
  const c = cli(trainArgs(corpus, run, '--steps', String(saved + 2)));
  assert.equal(c.status, 0, c.stdout + c.stderr);
  assert.match(c.stdout, new RegExp(`finished at step ${saved + 2} \\(resumed from step ${saved}\\)`));
  assert.ok(!fs.existsSync(path.join(run, '.lock')), 'released at the end');

  // Ctrl-C releases it too.
  const d = start(trainArgs(corpus, run, '--steps', '100000'));
  await until(d, () => trainSteps(run).length >= saved + 4);
  d.proc.kill('SIGINT');
  assert.equal(await d.exited, 0, d.out());
  assert.ok(!fs.existsSync(path.join(run, '.lock')), 'released on Ctrl-C');
});

test('a run folder with weights or metrics but no checkpoint is refused; --restart moves the files aside', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  const first = cli(trainArgs(corpus, run, '--steps', '30', '--checkpoint-every', '10'));
  assert.equal(first.status, 0, first.stdout + first.stderr);
  fs.rmSync(path.join(run, 'checkpoint.safetensors'));
  const weights = fs.readFileSync(path.join(run, 'weights.safetensors'));
  const metrics = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8');

  const again = cli(trainArgs(corpus, run, '--steps', '20'));
  assert.equal(again.status, 2, again.stdout + again.stderr);
  assert.match(again.stderr, /weights\.safetensors/);
  assert.match(again.stderr, /metrics\.jsonl \(30 steps\)/);
  assert.match(again.stderr, /no checkpoint\.safetensors/);
  assert.match(again.stderr, /--restart/);
  assert.ok(fs.readFileSync(path.join(run, 'weights.safetensors')).equals(weights), 'weights untouched');
  assert.equal(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8'), metrics, 'metrics untouched');

  const restart = cli(trainArgs(corpus, run, '--steps', '5', '--restart'));
  assert.equal(restart.status, 0, restart.stdout + restart.stderr);
  const aside = fs.readdirSync(run).filter((f) => f.startsWith('replaced-'));
  assert.equal(aside.length, 1, `one folder of replaced files: ${fs.readdirSync(run)}`);
  assert.match(restart.stdout, new RegExp(aside[0]));
  assert.ok(fs.readFileSync(path.join(run, aside[0], 'weights.safetensors')).equals(weights), 'old weights kept');
  assert.equal(fs.readFileSync(path.join(run, aside[0], 'metrics.jsonl'), 'utf8'), metrics, 'old metrics kept');
  assert.deepEqual(trainSteps(run), range(5), 'the new run logs its own 5 steps only');
  assert.equal(ckptStep(run), 5);
});

test('resuming with other schedule options is refused, naming each flag; --valid-every may change', async () => {
  const help = cli(['train', '--help']);
  assert.match(help.stdout, /--restart/);
  assert.match(help.stdout, /--lr, --min-lr, --warmup, --clip, --accumulate, --batch and --seed/);

  const run = path.join(tempDir(), 'run');
  const base = [await smallCorpus(), run];
  const stop = cli(trainArgs(base[0], base[1], '--steps', '8', '--stop-after', '3'));
  assert.equal(stop.status, 0, stop.stdout + stop.stderr);
  const changed = cli(trainArgs(base[0], base[1], '--steps', '8', '--lr', '0.001', '--seed', '4'));
  assert.equal(changed.status, 2, changed.stdout + changed.stderr);
  assert.match(changed.stderr, /--lr 0\.0003 -> 0\.001/);
  assert.match(changed.stderr, /--seed 0 -> 4/);
  assert.match(changed.stderr, /--restart/);
  assert.equal(ckptStep(run), 3, 'the checkpoint is untouched');

  const note = cli(trainArgs(base[0], base[1], '--steps', '8', '--valid-every', '4', '--checkpoint-every', '2'));
  assert.equal(note.status, 0, note.stdout + note.stderr);
  assert.match(note.stdout, /--valid-every 1000 -> 4/);
  assert.deepEqual(trainSteps(run), range(8));
  assert.deepEqual(
    metricLines(run).flatMap((m) => (m.valid_nll !== undefined ? [m.step] : [])),
    [4, 8],
    'validation on the new interval',
  );
});

test('audio added to a finished run: a rerun reports it finished; an extended run explains the choice', async () => {
  const audio = await smallAudio();
  const run = path.join(tempDir(), 'run');
  const first = cli(trainArgs(audio, run, '--steps', '4'));
  assert.equal(first.status, 0, first.stdout + first.stderr);
  const metrics = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8');
  const a = await decodeAudio(path.join(SAMPLES, 'train', 'vm-options.flac'), 16000);
  writeWav(path.join(audio, 'train', 'added.wav'), a.samples.subarray(0, 16000), 16000);

  const rerun = cli(trainArgs(audio, run, '--steps', '4'));
  assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
  assert.match(rerun.stdout, /already finished at step 4 of 4/);
  assert.equal(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8'), metrics, 'nothing retrained');

  const more = cli(trainArgs(audio, run, '--steps', '8'));
  assert.equal(more.status, 2, more.stdout + more.stderr);
  assert.match(more.stderr, /training split .* changed since/);
  assert.match(more.stderr, /--restart/);
  const snapshot = path.join(run, 'corpus-at-step4');
  assert.match(more.stderr, new RegExp(snapshot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const onSnapshot = cli(trainArgs(snapshot, run, '--steps', '8'));
  assert.equal(onSnapshot.status, 0, onSnapshot.stdout + onSnapshot.stderr);
  assert.deepEqual(trainSteps(run), range(8), 'the run continues on the audio it started with');
});

test('stale *.tmp-<pid> files of dead writers are removed when train starts; a live writer’s are kept', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  fs.mkdirSync(run);
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const stale = path.join(run, `checkpoint.safetensors.tmp-${dead}`);
  const live = path.join(run, `weights.safetensors.tmp-${process.pid}`);
  fs.writeFileSync(stale, Buffer.alloc(4096));
  fs.writeFileSync(live, 'in progress');
  const r = cli(trainArgs(corpus, run, '--steps', '2'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(!fs.existsSync(stale), 'the dead writer’s temporary file is gone');
  assert.ok(fs.existsSync(live), 'a live process’s temporary file is kept');
  assert.match(r.stdout, /removed 1 temporary file/);
});

test('a full disk while checkpointing is a clear error and the last checkpoint stays whole', async () => {
  await initBackend('wasm');
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  const o = (over: Partial<TrainOptions>) => opts(corpus, run, over);
  await train(o({ steps: 4 }));
  // /dev/full answers every write with ENOSPC: the writer's temporary file becomes a full disk.
  for (const file of ['weights.safetensors', 'checkpoint.safetensors']) {
    const tmp = path.join(run, `${file}.tmp-${process.pid}`);
    fs.symlinkSync('/dev/full', tmp);
    await assert.rejects(train(o({})), (e: Error) => {
      assert.ok(e instanceof UserError, `a user-fixable error, not a defect: ${e.stack}`);
      assert.match(e.message, new RegExp(file.replace('.', '\\.')));
      assert.match(e.message, /ENOSPC/);
      assert.match(e.message, /rerun/);
      return true;
    });
    fs.rmSync(tmp, { force: true });
    assert.equal(ckptStep(run), 4, `${file}: the last checkpoint is whole`);
    assert.ok(!fs.existsSync(path.join(run, '.lock')), 'lock released on the error');
  }
  const done = await train(o({}));
  assert.equal(done.step, 8);
  assert.deepEqual(trainSteps(run), range(8));
});

test('train lists the audio files it skipped and warns when the train split is shorter than a window', () => {
  const audio = path.join(tempDir(), 'audio');
  fs.mkdirSync(path.join(audio, 'train'), { recursive: true });
  const short = new Float32Array(20).map((_, i) => 0.3 * Math.sin(i));
  writeWav(path.join(audio, 'train', 'short.wav'), short, 16000);
  fs.writeFileSync(path.join(audio, 'train', 'junk.wav'), 'not a wav');
  const r = cli(trainArgs(audio, path.join(tempDir(), 'run'), '--steps', '1'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /skipped 1 file.*\n.*junk\.wav: /);
  assert.match(r.stdout, /train split .* 20 samples.*shorter than one training window.*32 samples/);
});

test('readers see whole, matching weights and config while a trainer checkpoints every step', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  const t = start(trainArgs(corpus, run, '--steps', '100000', '--checkpoint-every', '1'));
  await until(t, () => fs.existsSync(path.join(run, 'weights.safetensors')));
  // A real `eval` reads the run while this process loads it as often as it can.
  const ev = start(['eval', '--run', run, '--split', 'valid', '--engine', 'tfjs']);
  let evalDone = false;
  void ev.exited.then(() => (evalDone = true));
  let loads = 0;
  while (!evalDone || loads < 100) {
    const { params } = loadRun(run);
    assert.ok(params.size > 0);
    loads++;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(await ev.exited, 0, ev.out());
  const stepsWhileReading = trainSteps(run).length;
  t.proc.kill('SIGINT');
  assert.equal(await t.exited, 0, t.out());
  assert.ok(stepsWhileReading > 10, `the weights were replaced ${stepsWhileReading} times while being read`);
});

test('a fresh run checkpoints before its first step, and resuming from there gives the same weights', async () => {
  await initBackend('wasm');
  const corpus = await smallCorpus();
  const root = tempDir();
  for (const name of ['ct-tiny', 'wavenet-tiny']) {
    const model = modelPreset(name);
    const straight = path.join(root, `${name}-straight`);
    await train(opts(corpus, straight, { model, steps: 4 }));
    const run = path.join(root, `${name}-stopped`);
    const none = await train(opts(corpus, run, { model, steps: 4, stopSignal: { stop: true } }));
    assert.equal(none.step, 0);
    assert.equal(ckptStep(run), 0, `${name}: a step-0 checkpoint`);
    const resumed = await train(opts(corpus, run, { model, steps: 4 }));
    assert.equal(resumed.resumedFrom, 0);
    assert.ok(
      fs
        .readFileSync(path.join(run, 'weights.safetensors'))
        .equals(fs.readFileSync(path.join(straight, 'weights.safetensors'))),
      `${name}: resumed from step 0, the weights equal the uninterrupted run's`,
    );
  }
});
