import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/data/rng.js';
import { initBackend } from '../src/engine/backend.js';
import { ctForward, initialState } from '../src/models/compressive.js';
import { loadModel, saveModel } from '../src/models/model-files.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { CLI, REPO, tempDir } from './helpers.js';
import { codesTensor } from '../src/models/layers.js';
import { NUM_CODES } from '../src/util/codes.js';
import { codes, constParams, maxAbsDiff, ops, paramArrays, tinyConfig } from './model-helpers.js';

test('a saved model loads back bit for bit and gives the same logits', async () => {
  await initBackend('wasm');
  const cfg = tinyConfig();
  const arrays = paramArrays(cfg, 12);
  const dir = path.join(tempDir(), 'm');
  saveModel(dir, cfg, arrays);
  const back = loadModel(dir);
  assert.deepEqual(back.cfg, cfg);
  for (const [k, v] of arrays) assert.deepEqual(back.params.get(k)!.data, v.data, k);
  const seg = codes(cfg.segment);
  const a = ctForward(
    ops,
    cfg,
    constParams(arrays),
    codesTensor(ops, seg, NUM_CODES),
    null,
    initialState(ops, cfg, 1),
  ).logits.dataSync();
  const b = ctForward(
    ops,
    cfg,
    constParams(back.params),
    codesTensor(ops, seg, NUM_CODES),
    null,
    initialState(ops, cfg, 1),
  ).logits.dataSync();
  assert.equal(maxAbsDiff(a, b), 0);
  // The file is plain safetensors with our metadata.
  const st = decodeSafetensors(fs.readFileSync(path.join(dir, 'weights.safetensors')));
  assert.equal(st.metadata.format, 'ctspeech-params');
  assert.deepEqual(JSON.parse(st.metadata.config), cfg);
});

test('model files that do not fit are refused with the reason', () => {
  const cfg = tinyConfig();
  const arrays = paramArrays(cfg, 12);
  const root = tempDir();
  const missing = new Map(arrays);
  missing.delete('head.bias');
  assert.throws(() => saveModel(path.join(root, 'x'), cfg, missing), /missing head\.bias/);
  const dir = path.join(root, 'm');
  saveModel(dir, cfg, arrays);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, layers: 3 }));
  assert.throws(() => loadModel(dir), /does not match the config inside/);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, segment: 15 }));
  assert.throws(() => loadModel(dir), /segment \(15\) must be a multiple of compressionRate \(4\)/);
  fs.rmSync(path.join(dir, 'config.json'));
  assert.throws(() => loadModel(dir), /config\.json: missing/);
  saveModel(dir, cfg, arrays);
  const bytes = fs.readFileSync(path.join(dir, 'weights.safetensors'));
  fs.writeFileSync(path.join(dir, 'weights.safetensors'), bytes.subarray(0, bytes.length - 100));
  assert.throws(() => loadModel(dir), /weights\.safetensors/);
});

test('dropout is active only in training, seeded, and off at rate 0', async () => {
  await initBackend('wasm');
  const cfg = tinyConfig({ dropout: 0.3 });
  const p = constParams(paramArrays(cfg, 2));
  const seg = codes(cfg.segment);
  const run = (rng?: Rng) =>
    ctForward(ops, cfg, p, codesTensor(ops, seg, NUM_CODES), null, initialState(ops, cfg, 1), {
      dropoutRng: rng,
    }).logits.dataSync();
  const evalA = run();
  const evalB = run();
  assert.equal(maxAbsDiff(evalA, evalB), 0);
  const t1 = run(new Rng(5));
  const t2 = run(new Rng(5));
  const t3 = run(new Rng(6));
  assert.equal(maxAbsDiff(t1, t2), 0, 'same seed, same masks');
  assert.ok(maxAbsDiff(t1, t3) > 1e-4, 'different seed, different masks');
  assert.ok(maxAbsDiff(t1, evalA) > 1e-4, 'training differs from evaluation');
  const off = tinyConfig({ dropout: 0 });
  const q = ctForward(ops, off, p, codesTensor(ops, seg, NUM_CODES), null, initialState(ops, off, 1), {
    dropoutRng: new Rng(5),
  }).logits.dataSync();
  assert.equal(maxAbsDiff(q, evalA), 0);
  tf.disposeVariables();
});

test('ctspeech model prints the parameter count and backend, and writes initial weights', () => {
  const dir = path.join(tempDir(), 'init');
  const r = spawnSync(process.execPath, [CLI, 'model', '--preset', 'ct-cpu', '--save', dir], {
    cwd: REPO,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Compressive Transformer: 4 layers.*1\.19M parameters/);
  assert.match(r.stdout, /backend: wasm/);
  assert.ok(loadModel(dir).params.size > 0);
  const bad = spawnSync(process.execPath, [CLI, 'model', '--preset', 'ct-huge'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /ct-huge.*ct-tiny/s);
  const cfgFile = path.join(tempDir(), 'c.yaml');
  fs.writeFileSync(cfgFile, 'preset: ct-tiny\nsegment: 18\n');
  const badCfg = spawnSync(process.execPath, [CLI, 'model', '--config', cfgFile], { cwd: REPO, encoding: 'utf8' });
  assert.equal(badCfg.status, 2);
  assert.match(badCfg.stderr, /segment \(18\) must be a multiple of compressionRate \(4\)/);
  const forced = spawnSync(process.execPath, [CLI, 'model', '--backend', 'tensorflow'], {
    cwd: REPO,
    encoding: 'utf8',
  });
  assert.equal(forced.status, 2);
  assert.match(forced.stderr, /--backend tensorflow/);
});
