import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import type { GraphExecutor } from '../src/engine/executor.js';
import type { GenerationGraphs, GraphKind } from '../src/models/family.js';
import { ensureGraph, ONNX_DIR } from '../src/infer/onnx-export.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import { SegmentScorer } from '../src/models/segment-runner.js';
import { TfExecutor } from '../src/infer/tf-executor.js';
import type { TransformerConfig } from '../src/models/config.js';
import { type ParamArrays, saveModel } from '../src/models/model-files.js';
import { familyOf, type ModelConfig, modelPreset } from '../src/models/registry.js';
import { wavenetPreset } from '../src/models/wavenet-config.js';
import { anyParams, checkStepsMatchSegments } from './infer-helpers.js';
import { codes, maxAbsDiff, tinyConfig } from './model-helpers.js';

await initBackend('cpu');
const ROOT = path.resolve(import.meta.dirname, '..', '..');

function runDir(cfg: ModelConfig, params: ParamArrays): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-onnx-'));
  saveModel(dir, cfg, params);
  return dir;
}

async function ortGraphs(
  dir: string,
  cfg: ModelConfig,
  params: ParamArrays,
  B: number,
  segmentLength: number,
): Promise<GenerationGraphs> {
  const open = async (kind: GraphKind, length: number): Promise<GraphExecutor> =>
    (
      await OrtExecutor.open(ensureGraph(dir, cfg, params, { kind, batch: B, length }).file, {
        threads: 1,
        device: 'cpu',
      })
    ).exec;
  const g: GenerationGraphs = {
    segment: await open('segment', segmentLength),
    segmentLength,
    step: await open('step', 1),
  };
  if (cfg.kind === 'transformer') {
    g.roll = await open('roll', 1);
    g.keys = await open('keys', 1);
  }
  return g;
}

const models: [string, ModelConfig][] = [
  ['ct-tiny', tinyConfig()],
  ['ct-tiny dilated-conv', tinyConfig({ compression: 'dilated-conv' })],
  ['txl-tiny', modelPreset('txl-tiny')],
  ['wavenet-tiny', modelPreset('wavenet-tiny')],
];
// Most-used compression evaluates on onnxruntime (a static selection graph) but does not generate.
const segmentModels: [string, ModelConfig][] = [
  ...models,
  ['ct-tiny most-used', tinyConfig({ compression: 'most-used', auxLoss: 'none' })],
];

for (const [name, cfg] of segmentModels) {
  test(`onnxruntime segment graph of ${name} equals tfjs on the same weights and audio, resets included`, async () => {
    const params = anyParams(cfg);
    const dir = runDir(cfg, params);
    const n = cfg.kind === 'wavenet' ? 48 : cfg.segment;
    const spec = { kind: 'segment' as const, batch: 2, length: n };
    const ort = new SegmentScorer(
      familyOf(cfg).hostState(cfg, 2),
      n,
      (await OrtExecutor.open(ensureGraph(dir, cfg, params, spec).file, { threads: 1, device: 'cpu' })).exec,
    );
    const tf = new SegmentScorer(
      familyOf(cfg).hostState(cfg, 2),
      n,
      new TfExecutor(familyOf(cfg).graphBuilder(cfg, spec), params),
    );
    let worst = 0;
    for (let s = 0; s < 5; s++) {
      const tokens = codes(2 * n, 40 + s);
      const reset = s === 3 ? [0, 1] : null; // row 1 starts a new file mid-stream
      const a = await ort.run(tokens, reset);
      const b = await tf.run(tokens, reset);
      worst = Math.max(worst, maxAbsDiff(a, b));
    }
    assert.ok(worst <= 1e-4, `max |onnxruntime - tfjs| = ${worst}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

for (const [name, cfg] of models) {
  test(`onnxruntime step graph of ${name} reproduces segment-mode logits over 2,000 steps`, async () => {
    const params = anyParams(cfg);
    const dir = runDir(cfg, params);
    const n = cfg.kind === 'wavenet' ? 64 : cfg.segment;
    // 2,048 positions: 128 memory rolls (with compression) for the transformers.
    const worst = await checkStepsMatchSegments(
      cfg,
      await ortGraphs(dir, cfg, params, 2, n),
      params,
      2,
      2048,
      n + 3,
      n,
      2e-4,
    );
    assert.ok(worst <= 2e-4);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test('exported graphs load in a fresh onnxruntime session with no project code', async () => {
  const cfg = tinyConfig();
  const params = anyParams(cfg);
  const dir = runDir(cfg, params);
  for (const kind of ['segment', 'step', 'roll', 'keys'] as const)
    ensureGraph(dir, cfg, params, { kind, batch: 1, length: kind === 'segment' ? cfg.segment : 1 });
  const script = `
    import * as ort from 'onnxruntime-node';
    import fs from 'node:fs';
    const dir = process.argv[1];
    const out = [];
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
      const s = await ort.InferenceSession.create(dir + '/' + f);
      const feeds = {};
      for (const name of s.inputNames) {
        const meta = s.inputMetadata.find((m) => m.name === name);
        const shape = meta.shape;
        feeds[name] = new ort.Tensor('float32', new Float32Array(shape.reduce((a, v) => a * v, 1)), shape);
      }
      const r = await s.run(feeds);
      out.push(f.split('-')[0] + ':' + Object.keys(r).length);
    }
    console.log(out.join(' '));`;
  const printed = execFileSync(process.execPath, ['--input-type=module', '-e', script, path.join(dir, ONNX_DIR)], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.deepEqual(printed.trim().split(' ').sort(), ['keys:4', 'roll:8', 'segment:5', 'step:4']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('graphs are reused while the weights are unchanged and rebuilt when they change', () => {
  const cfg = modelPreset('txl-tiny') as TransformerConfig;
  const params = anyParams(cfg);
  const dir = runDir(cfg, params);
  const spec = { kind: 'segment' as const, batch: 1, length: cfg.segment };
  const first = ensureGraph(dir, cfg, params, spec);
  assert.equal(first.exported, true);
  assert.equal(ensureGraph(dir, cfg, params, spec).exported, false);
  const other = ensureGraph(dir, { ...cfg, memory: 2 * cfg.memory }, params, spec);
  assert.notEqual(other.file, first.file, 'a memory override is a different graph');
  saveModel(dir, cfg, anyParams(cfg, 9));
  const again = ensureGraph(dir, cfg, anyParams(cfg, 9), spec);
  assert.equal(again.exported, true, 'new weights: stale graphs are rebuilt');
  assert.equal(fs.existsSync(other.file), false, 'stale graphs are removed');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('most-used compression cannot generate (its memory roll needs a segment of attention): a clear error', () => {
  const cfg = tinyConfig({ compression: 'most-used', auxLoss: 'none' });
  assert.throws(
    () => familyOf(cfg).graphBuilder(cfg, { kind: 'roll', batch: 1, length: 1 }),
    /most-used model cannot generate/,
  );
});

test('a cached graph whose bytes were damaged, size unchanged, is exported again and says so', () => {
  const cfg = modelPreset('wavenet-tiny');
  const params = anyParams(cfg);
  const dir = runDir(cfg, params);
  const spec = { kind: 'step' as const, batch: 1, length: 1 };
  const first = ensureGraph(dir, cfg, params, spec);
  const good = fs.readFileSync(first.file);
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0x40; // one flipped bit inside the embedded weights
  fs.writeFileSync(first.file, bad);
  const again = ensureGraph(dir, cfg, params, spec);
  assert.equal(again.exported, true, 'the damaged file is not reused');
  assert.match(again.replaced ?? '', /does not match the sha256 in export\.json/);
  assert.deepEqual(fs.readFileSync(again.file), good, 'the same graph as first exported');
  assert.equal(ensureGraph(dir, cfg, params, spec).exported, false, 'then reused');
  // An index from before hashes were recorded: re-exported once, then trusted.
  const index = path.join(dir, ONNX_DIR, 'export.json');
  const j = JSON.parse(fs.readFileSync(index, 'utf8'));
  for (const g of Object.values(j.graphs) as { sha256?: string }[]) delete g.sha256;
  fs.writeFileSync(index, JSON.stringify(j));
  assert.match(ensureGraph(dir, cfg, params, spec).replaced ?? '', /no content hash/);
  assert.equal(ensureGraph(dir, cfg, params, spec).exported, false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the eager tfjs executor folds weight rearrangements once: same outputs every call, no tensor left', async () => {
  const tfjs = await import('@tensorflow/tfjs');
  const cfg = wavenetPreset('wavenet-tiny');
  const params = anyParams(cfg);
  const spec = { kind: 'step' as const, batch: 1, length: 1 };
  const L = cfg.stacks * cfg.layersPerStack;
  const feeds = {
    tokens: { data: Float32Array.from({ length: 256 }, (_, i) => (i === 131 ? 1 : 0)), shape: [1, 256] },
    past: {
      data: Float32Array.from({ length: L * cfg.residualChannels }, (_, i) => Math.sin(i)),
      shape: [L, cfg.residualChannels],
    },
  };
  const before = tfjs.memory().numTensors;
  const folded = new TfExecutor(familyOf(cfg).graphBuilder(cfg, spec), params);
  const first = await folded.run(feeds);
  const afterFirst = tfjs.memory().numTensors;
  assert.ok(afterFirst - before > params.size, 'the stacked taps and skips are kept past the first call');
  const again = await folded.run(feeds);
  assert.equal(tfjs.memory().numTensors, afterFirst, 'a second call keeps no further tensors');
  for (const k of Object.keys(first)) assert.deepEqual(again[k], first[k], `${k} on the second call`);
  // The same step through onnxruntime, where the rearrangements are folded by its optimiser.
  const dir = runDir(cfg, params);
  const { exec } = await OrtExecutor.open(ensureGraph(dir, cfg, params, spec).file, { threads: 1, device: 'cpu' });
  const ort = await exec.run(feeds);
  await exec.dispose();
  for (const k of Object.keys(first)) assert.ok(maxAbsDiff(ort[k], first[k]) <= 1e-5, `${k}: tfjs against onnxruntime`);
  await folded.dispose();
  assert.equal(tfjs.memory().numTensors, before, 'dispose frees the weights and what was folded from them');
  fs.rmSync(dir, { recursive: true, force: true });
});
