import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { writeWav } from '../src/audio/wav.js';
import { initBackend } from '../src/engine/backend.js';
import { modelPreset } from '../src/models/registry.js';
import { wavenetPreset } from '../src/models/wavenet-config.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import type { TrainOptions } from '../src/train/run-options.js';
import { train } from '../src/train/trainer.js';
import { CLI, REPO, SAMPLES, tempDir } from './helpers.js';

/** A small audio tree (a few seconds per split) so runs take seconds. */
async function smallAudio(): Promise<string> {
  const root = path.join(tempDir(), 'audio');
  const pick: [string, string][] = [
    ['train', 'train/vm-review.wav'],
    ['train', 'train/vm-msginstruct.wav'],
    ['valid', 'valid/vm-tempgreeting2.wav'],
    ['test', 'test/vm-forwardoptions.wav'],
  ];
  for (const [split, rel] of pick) {
    const a = await decodeAudio(path.join(SAMPLES, rel), 16000);
    fs.mkdirSync(path.join(root, split), { recursive: true });
    writeWav(path.join(root, split, path.basename(rel)), a.samples.subarray(0, 16000 * 3), 16000);
  }
  return root;
}

function opts(data: string, run: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data: [data],
    run,
    model: modelPreset('ct-tiny'),
    batch: 4,
    steps: 24,
    peakLr: 3e-3,
    minLr: 1e-5,
    warmup: 4,
    clip: 1,
    accumulate: 1,
    validEvery: 12,
    validSamples: 2000,
    checkpointEvery: 5,
    seed: 3,
    ...over,
  };
}

test('training is deterministic: N steps straight equal N/2, a stop, and N/2 resumed', async () => {
  await initBackend('wasm');
  const audio = await smallAudio();
  const root = tempDir();
  for (const model of ['ct-tiny', 'wavenet-tiny']) {
    const cfg = modelPreset(model);
    const a = await train(opts(audio, path.join(root, `${model}-a`), { model: cfg }));
    assert.equal(a.step, 24);
    const b1 = await train(opts(audio, path.join(root, `${model}-b`), { model: cfg, stopAfter: 11 }));
    assert.equal(b1.step, 11);
    assert.ok(b1.interrupted);
    const b2 = await train(opts(audio, path.join(root, `${model}-b`), { model: cfg }));
    assert.equal(b2.resumedFrom, 11);
    assert.equal(b2.step, 24);
    const wa = fs.readFileSync(path.join(root, `${model}-a`, 'weights.safetensors'));
    const wb = fs.readFileSync(path.join(root, `${model}-b`, 'weights.safetensors'));
    assert.ok(wa.equals(wb), `${model}: resumed weights equal the straight run's, bit for bit`);
    const steps = fs
      .readFileSync(path.join(root, `${model}-b`, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.nll !== undefined)
      .map((m) => m.step);
    assert.deepEqual(
      steps,
      Array.from({ length: 24 }, (_, i) => i + 1),
      'one metrics line per step, none replayed',
    );
  }
});

test('loss falls on samples/ and validation NLL ends below the unigram entropy', async () => {
  await initBackend('wasm');
  const run = path.join(tempDir(), 'learn');
  const s = await train(
    opts(SAMPLES, run, { steps: 160, batch: 8, validEvery: 80, validSamples: 6000, checkpointEvery: 80 }),
  );
  assert.ok(
    s.validNats !== null && s.validNats < s.unigramNats! - 0.5,
    `valid ${s.validNats} vs unigram ${s.unigramNats}`,
  );
  const nll = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.nll !== undefined)
    .map((m) => m.nll);
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  assert.ok(mean(nll.slice(-20)) < mean(nll.slice(0, 20)) - 0.5, 'training NLL falls');
  const first = JSON.parse(fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n')[0]);
  assert.equal(first.lr, 1e-5, 'step 1 logs the rate it applied: the warm-up start (minLr)');
  const png = fs.readFileSync(path.join(run, 'curves.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
});

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, CI: '1' } });
}

test('bad inputs: clear errors, nothing overwritten', async () => {
  const root = tempDir();
  fs.mkdirSync(path.join(root, 'empty'));
  const empty = cli([
    'train',
    path.join(root, 'empty'),
    '--run',
    path.join(root, 'r1'),
    '--model',
    'ct-tiny',
    '--steps',
    '2',
  ]);
  assert.equal(empty.status, 2, empty.stderr);
  assert.match(empty.stderr, /no (decodable )?audio (found )?in .*empty/);
  fs.mkdirSync(path.join(root, 'junk'));
  fs.writeFileSync(path.join(root, 'junk', 'a.wav'), 'not a wav');
  const junk = cli([
    'train',
    path.join(root, 'junk'),
    '--run',
    path.join(root, 'r2'),
    '--model',
    'ct-tiny',
    '--steps',
    '2',
  ]);
  assert.equal(junk.status, 2);
  assert.match(junk.stderr, /no (decodable )?audio .*a\.wav: not a/);
  const cfgFile = path.join(root, 'bad.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ preset: 'ct-tiny', segment: 10 }));
  const bad = cli(['train', SAMPLES, '--run', path.join(root, 'r3'), '--config', cfgFile]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /segment \(10\) must be a multiple of compressionRate/);

  const audio = await smallAudio();
  const run = path.join(root, 'run');
  await initBackend('wasm');
  await train(opts(audio, run, { steps: 6 }));
  const before = fs.readFileSync(path.join(run, 'checkpoint.safetensors'));
  const other = cli(['train', audio, '--run', run, '--model', 'txl-tiny', '--steps', '6']);
  assert.equal(other.status, 2);
  assert.match(other.stderr, /cannot resume .*run/);
  fs.writeFileSync(path.join(run, 'checkpoint.safetensors'), before.subarray(0, before.length - 1000));
  const weightsBefore = fs.readFileSync(path.join(run, 'weights.safetensors'));
  const trunc = cli(['train', audio, '--run', run, '--model', 'ct-tiny', '--steps', '8']);
  assert.equal(trunc.status, 2);
  assert.match(trunc.stderr, /checkpoint\.safetensors/);
  assert.ok(fs.readFileSync(path.join(run, 'weights.safetensors')).equals(weightsBefore), 'weights untouched');
  const flag = cli(['train', audio, '--run', run, '--steps', 'many']);
  assert.notEqual(flag.status, 0);
  assert.match(flag.stderr, /--steps/);
});

test('Ctrl-C saves a checkpoint and exits cleanly; kill -9 loses at most the steps since the last one', async () => {
  const audio = await smallAudio();
  const run = path.join(tempDir(), 'sig');
  const args = [
    CLI,
    'train',
    audio,
    '--run',
    run,
    '--model',
    'ct-tiny',
    '--steps',
    '400',
    '--checkpoint-every',
    '7',
    '--valid-every',
    '1000',
    '--batch',
    '2',
  ];
  const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, CI: '1' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (
        fs.existsSync(path.join(run, 'metrics.jsonl')) &&
        fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').length > 10
      ) {
        clearInterval(timer);
        child.kill('SIGINT');
        resolve();
      }
    }, 50);
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /checkpoint saved/);
  const ck = loadCheckpoint(path.join(run, 'checkpoint.safetensors'));
  const saved = (ck.state as { step: number }).step;
  assert.ok(saved >= 10);

  const hard = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, CI: '1' } });
  await new Promise((r) => setTimeout(r, 2500));
  hard.kill('SIGKILL');
  await new Promise((r) => hard.on('exit', r));
  const after = loadCheckpoint(path.join(run, 'checkpoint.safetensors'));
  assert.ok((after.state as { step: number }).step >= saved, 'a loadable checkpoint survives kill -9');
  const resume = cli([
    'train',
    audio,
    '--run',
    run,
    '--model',
    'ct-tiny',
    '--steps',
    String((after.state as { step: number }).step + 2),
    '--valid-every',
    '1000',
    '--batch',
    '2',
  ]);
  assert.equal(resume.status, 0, resume.stderr + resume.stdout);
  assert.match(resume.stdout, /resumed from step/);
});

test('a WaveNet run written before configs had `init` resumes (init only shapes fresh weights)', async () => {
  await initBackend('wasm');
  const audio = await smallAudio();
  const run = path.join(tempDir(), 'legacy-wavenet');
  const cfg = wavenetPreset('wavenet-tiny');
  await train(opts(audio, run, { model: cfg, steps: 6, stopAfter: 3 }));
  // Rewrite the run as an older ctspeech left it: no `init` in the checkpoint or config.json.
  const file = path.join(run, 'checkpoint.safetensors');
  const ck = loadCheckpoint(file);
  const { init: _init, ...legacy } = ck.config as Record<string, unknown>;
  saveCheckpoint(file, { ...ck, config: legacy });
  fs.writeFileSync(path.join(run, 'config.json'), JSON.stringify(legacy, null, 2));
  const resumed = await train(opts(audio, run, { model: cfg, steps: 6 }));
  assert.equal(resumed.resumedFrom, 3);
  assert.equal(resumed.step, 6);
  // Any other difference is still refused.
  await assert.rejects(
    train(opts(audio, run, { model: { ...cfg, residualChannels: 8 }, steps: 8 })),
    /different config/,
  );
});
