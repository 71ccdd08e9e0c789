import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { modelPreset } from '../src/models/registry.js';
import { activationBytes, trainingMemory, WASM_HEAP_BYTES } from '../src/train/memory-estimate.js';
import { CLI, SAMPLES, tempDir } from './helpers.js';

test('traced activations grow exactly linearly with the batch, so two traces predict any batch', () => {
  for (const name of ['ct-tiny', 'txl-tiny', 'wavenet-tiny']) {
    const cfg = modelPreset(name);
    const [a1, a2, a5] = [1, 2, 5].map((b) => activationBytes(cfg, b));
    assert.ok(a2 > a1, `${name}: more rows, more activations`);
    assert.equal(a5 - a1, 4 * (a2 - a1), `${name}: activations at batch 5 from the line through batches 1 and 2`);
  }
});

test('the wasm estimate reproduces where training was measured to fit and to abort', () => {
  // Measured on tfjs-wasm: these train...
  for (const [name, batch] of [
    ['ct-cpu', 8],
    ['txl-cpu', 8],
    ['wavenet-cpu', 2],
  ] as const) {
    const e = trainingMemory(modelPreset(name), batch, 'wasm');
    assert.ok(e.bytes <= WASM_HEAP_BYTES, `${name} at batch ${batch} trains on wasm; estimated ${e.bytes}`);
  }
  // ...and these abort the 4 GB heap.
  for (const [name, batch] of [
    ['ct-cpu', 12],
    ['wavenet-cpu', 3],
    ['wavenet-cpu', 8],
    ['ct-tiny', 4096],
  ] as const) {
    const e = trainingMemory(modelPreset(name), batch, 'wasm');
    assert.ok(e.bytes > WASM_HEAP_BYTES, `${name} at batch ${batch} aborted wasm; estimated ${e.bytes}`);
    assert.ok(e.largestBatch < batch, `${name}: the largest batch that fits is below ${batch}`);
    const atLargest = trainingMemory(modelPreset(name), e.largestBatch, 'wasm').bytes;
    assert.ok(atLargest <= WASM_HEAP_BYTES, `${name}: the batch offered fits`);
  }
  assert.equal(trainingMemory(modelPreset('wavenet-cpu'), 8, 'wasm').largestBatch, 2);
});

test('the tensorflow backend is not limited (its memory may be a GPU the estimate cannot see)', () => {
  const e = trainingMemory(modelPreset('wavenet-cpu'), 8, 'tensorflow');
  assert.equal(e.limit, Infinity);
  assert.equal(e.largestBatch, Infinity);
});

test('train refuses a batch too large for wasm before touching the run, naming the batch that fits', () => {
  const dir = tempDir();
  const run = path.join(dir, 'run');
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'train',
      SAMPLES,
      '--model',
      'wavenet-cpu',
      '--batch',
      '8',
      '--run',
      run,
      '--backend',
      'wasm',
      '--engine',
      'tfjs',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /at batch 8 needs about [\d.]+ GB, more than tfjs-wasm's 4 GB heap/);
  assert.match(r.stderr, /the largest batch that fits is 2: use --batch 2/);
  assert.ok(!fs.existsSync(path.join(run, 'weights.safetensors')), 'nothing trained or written');
});
