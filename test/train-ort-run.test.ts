/**
 * `train --engine onnxruntime` end to end: a run stopped and resumed ends with exactly the weights of
 * an uninterrupted one, and a checkpoint moves between engines in both directions.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type ModelConfig, modelPreset } from '../src/models/registry.js';
import { readMetrics } from '../src/train/curves.js';
import { resolveEngine } from '../src/train/step-engine.js';
import { smallCorpus } from './corpus-helpers.js';
import { CLI, tempDir } from './helpers.js';

function train(corpus: string, run: string, engine: string, extra: string[] = []) {
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'train',
      corpus,
      '--model',
      'ct-tiny',
      '--run',
      run,
      '--steps',
      '12',
      '--batch',
      '2',
      '--engine',
      engine,
      '--threads',
      '1',
      '--valid-every',
      '6',
      '--valid-samples',
      '2000',
      '--checkpoint-every',
      '3',
      ...extra,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `${engine} ${extra.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const weights = (run: string) => fs.readFileSync(path.join(run, 'weights.safetensors'));

test('onnxruntime training: stopped and resumed equals uninterrupted, bit for bit', async () => {
  const corpus = await smallCorpus();
  const dir = tempDir();
  const whole = path.join(dir, 'whole');
  const parts = path.join(dir, 'parts');
  train(corpus, whole, 'onnxruntime');
  train(corpus, parts, 'onnxruntime', ['--stop-after', '5']);
  train(corpus, parts, 'onnxruntime');
  assert.ok(weights(whole).equals(weights(parts)), 'same weights file');
  const steps = readMetrics(path.join(parts, 'metrics.jsonl'))
    .filter((m) => m.nll !== undefined)
    .map((m) => m.step);
  assert.deepEqual(
    steps,
    Array.from({ length: 12 }, (_, i) => i + 1),
    'each step logged once',
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(parts, 'train.json'), 'utf8')).engine, 'onnxruntime');
});

test('a checkpoint moves between engines: tfjs -> onnxruntime -> tfjs', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  train(corpus, run, 'tfjs', ['--stop-after', '4']);
  train(corpus, run, 'onnxruntime', ['--stop-after', '4']);
  const out = train(corpus, run, 'tfjs');
  assert.match(out, /finished at step 12 \(resumed from step 8\)/);
  const m = readMetrics(path.join(run, 'metrics.jsonl')).filter((x) => x.nll !== undefined);
  assert.deepEqual(
    m.map((x) => x.step),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  // Training went on: the last steps' loss is below the first steps'.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(m.slice(-3).map((x) => x.nll!)) < mean(m.slice(0, 3).map((x) => x.nll!)));
});

test('engine auto: onnxruntime where it supports the run, tfjs (said) where it does not', () => {
  const base = {
    data: [],
    run: 'x',
    model: modelPreset('ct-tiny'),
    batch: 2,
    steps: 1,
    peakLr: 1e-3,
    minLr: 1e-5,
    warmup: 0,
    clip: 0.1,
    accumulate: 1,
    validEvery: 1,
    validSamples: 100,
    checkpointEvery: 1,
    seed: 0,
    engine: 'auto' as const,
  };
  assert.equal(resolveEngine(base), 'onnxruntime');
  assert.equal(resolveEngine({ ...base, model: modelPreset('wavenet-tiny') }), 'onnxruntime');
  // Every option and compression trains on onnxruntime now: accumulation and most-used included.
  assert.equal(resolveEngine({ ...base, accumulate: 2 }), 'onnxruntime');
  const mostUsed = { ...modelPreset('ct-tiny'), compression: 'most-used', auxLoss: 'none' } as ModelConfig;
  assert.equal(resolveEngine({ ...base, model: mostUsed }), 'onnxruntime');
  assert.equal(resolveEngine({ ...base, engine: 'tfjs' }), 'tfjs');
  assert.equal(resolveEngine({ ...base, engine: undefined }), 'tfjs', 'the library default stays tfjs');
});
