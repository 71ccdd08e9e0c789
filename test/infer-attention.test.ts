import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import {
  attentionByAge,
  attentionChart,
  attentionMarkdown,
  type AttentionProfile,
  segmentsToFill,
} from '../src/infer/attention.js';
import { ctForward, initialState } from '../src/models/compressive.js';
import { preset, type TransformerConfig } from '../src/models/config.js';
import { chartPng } from '../src/report/chart.js';
import { codesTensor } from '../src/models/layers.js';
import { NUM_CODES } from '../src/util/codes.js';
import { codes, constParams, maxAbsDiff, ops, paramArrays, tinyConfig } from './model-helpers.js';

before(async () => {
  await initBackend('wasm');
});

const file = (len: number, seed = 7) => ({ path: `f${len}-${seed}`, codes: Uint8Array.from(codes(len, seed)) });
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function checkMasses(p: AttentionProfile): void {
  for (const [l, rs] of p.regionsPerLayer.entries()) {
    assert.ok(Math.abs(sum(rs.map((r) => r.mass)) - 1) < 1e-5, `layer ${l}: region masses sum to 1`);
    assert.ok(Math.abs(sum(p.perLayer[l]) - 1) < 1e-5, `layer ${l}: slot weights sum to 1`);
  }
  assert.ok(Math.abs(sum(p.regions.map((r) => r.mass)) - 1) < 1e-5);
}

test('ct-tiny: masses sum to 1 per layer, no tensors leak, chart and table render', async () => {
  const cfg = tinyConfig();
  const files = [file(100, 1), file(130, 2), file(70, 3)];
  const before = tf.memory().numTensors;
  const p = await attentionByAge(cfg, paramArrays(cfg), files, { batch: 2 });
  assert.equal(tf.memory().numTensors, before, 'every tensor disposed');
  assert.deepEqual(p.slots, { compressed: 8, memory: 16, segment: 16 });
  assert.equal(p.layers, 2);
  assert.equal(p.perLayer[0].length, 40);
  assert.deepEqual(
    p.regions.map((r) => r.name),
    ['compressed memory', 'memory', 'segment'],
  );
  checkMasses(p);
  // Random weights do look at old memories: every slot gets some weight.
  assert.ok(p.mean.every((w) => w > 0));
  const png = chartPng(attentionChart(p, 'ct-tiny attention by key slot'));
  assert.ok(png.length > 1000 && Buffer.from(png.subarray(1, 4)).toString() === 'PNG');
  const md = attentionMarkdown(p);
  assert.match(md, /\| compressed memory \| 8 \|/);
  assert.match(md, /\| memory \| 16 \| [0-9.e-]+ \| [0-9.e-]+ \| 1\.00x \|/);
  assert.match(md, /\| segment \| 16 \|/);
});

test('counted = the whole segments after memory and compressed memory are full (hand-computed)', async () => {
  // ct-tiny: n = 16, n_m = 16, n_cm = 8, c = 4. Segment 0 fills memory; segments 1 and 2 each push 16
  // real memories out, compressed into 4 slots: compressed memory is full before segment 3.
  const cfg = tinyConfig();
  assert.equal(segmentsToFill(cfg), 3);
  const arrays = paramArrays(cfg);
  // Lengths 100, 70, 50, 130, 10 hold 6, 4, 3, 8, 0 whole segments: 3 + 1 + 0 + 5 + 0 = 9 counted.
  const files = [file(100, 1), file(70, 2), file(50, 3), file(130, 4), file(10, 5)];
  for (const batch of [1, 2, 3])
    assert.equal((await attentionByAge(cfg, arrays, files, { batch, maxSegments: 1000 })).counted, 9, `batch ${batch}`);
  assert.equal(
    (await attentionByAge(cfg, arrays, files, { batch: 3, maxSegments: 4 })).counted,
    4,
    'stops at maxSegments',
  );

  // n_m = 24: after segment 0 memory holds 16; segment 1 pushes out 8 real ones (2 slots), segment 2
  // 16 (4 more: 6), segment 3 fills it (8): the first counted segment is 4.
  const wide = tinyConfig({ memory: 24 });
  assert.equal(segmentsToFill(wide), 4);
  // 100, 70, 80 codes: 6, 4, 5 whole segments -> 2 + 0 + 1.
  assert.equal(
    (
      await attentionByAge(wide, paramArrays(wide), [file(100, 1), file(70, 2), file(80, 3)], {
        batch: 2,
        maxSegments: 1000,
      })
    ).counted,
    3,
  );

  await assert.rejects(attentionByAge(cfg, arrays, [file(63, 1)]), /no segment with full memories.*at least 64 codes/);
});

test('per-slot means match a direct computation from ctForward probs', async () => {
  const cfg = tinyConfig();
  const arrays = paramArrays(cfg, 5);
  const { segment: n, heads: H, layers: L } = cfg;
  const K = cfg.compressedMemory + cfg.memory + n;
  const stream = codes(5 * n, 9);
  // Segments 3 and 4 are the two counted ones of a 5-segment file.
  const p = await attentionByAge(cfg, arrays, [{ path: 'a', codes: Uint8Array.from(stream) }], {
    batch: 1,
    maxSegments: 2,
  });
  assert.equal(p.counted, 2);

  const run: TransformerConfig = { ...cfg, auxLoss: 'none' };
  const params = constParams(arrays);
  let state = initialState(ops, run, 1);
  const expected = Array.from({ length: L }, () => new Float64Array(K));
  for (let s = 0; s < 5; s++) {
    const out = ctForward(
      ops,
      run,
      params,
      codesTensor(ops, stream.subarray(s * n, (s + 1) * n), NUM_CODES),
      s === 0 ? [1] : null,
      state,
      {
        keepProbs: true,
      },
    );
    if (s >= 3) {
      out.probs!.forEach((t, l) => {
        const pr = t.dataSync() as Float32Array; // [1, H, n, K]
        for (let h = 0; h < H; h++)
          for (let i = 0; i < n; i++)
            for (let k = 0; k < K; k++) expected[l][k] += pr[(h * n + i) * K + k] / (H * n * 2);
      });
    }
    state = out.state;
  }
  for (let l = 0; l < L; l++) assert.ok(maxAbsDiff(p.perLayer[l], expected[l]) < 1e-6, `layer ${l}`);
});

test('Transformer-XL: no compressed region, same analysis', async () => {
  const cfg = preset('txl-tiny');
  const p = await attentionByAge(cfg, paramArrays(cfg), [file(100, 1), file(70, 2)], { batch: 2, maxSegments: 1000 });
  // n = n_m = 16: memory is full after one segment; 6 - 1 + 4 - 1 = 8 counted.
  assert.equal(segmentsToFill(cfg), 1);
  assert.equal(p.counted, 8);
  assert.deepEqual(p.slots, { compressed: 0, memory: 16, segment: 16 });
  assert.deepEqual(
    p.regions.map((r) => r.name),
    ['memory', 'segment'],
  );
  assert.equal(p.perLayer[0].length, 32);
  checkMasses(p);
  assert.doesNotMatch(attentionMarkdown(p), /compressed memory/);
  assert.ok(chartPng(attentionChart(p, 'txl-tiny')).length > 1000);
});

test('uniform attention (zeroed attention weights) gives the predicted profile', async () => {
  for (const cfg of [tinyConfig(), preset('txl-tiny')]) {
    const arrays = paramArrays(cfg, 2);
    // Zero q, k, the position projection and both biases: every score is 0, so each query spreads
    // its weight evenly over the keys it may see.
    for (let l = 0; l < cfg.layers; l++)
      for (const w of ['wq', 'wk', 'wr', 'u', 'v']) arrays.get(`layers.${l}.attn.${w}`)!.data.fill(0);
    const p = await attentionByAge(cfg, arrays, [file(160, 3), file(120, 4)], { batch: 2 });
    const { segment: n } = cfg;
    const M = cfg.memory + cfg.compressedMemory;
    // Query i sees M memory keys and segment keys 0..i: weight 1/(M + i + 1) each. Averaged over all n
    // queries (those before slot j give it 0), memory slots get the mean over i of that, and segment slot j
    // the sum over i >= j divided by n.
    const w = (i: number) => 1 / (M + i + 1);
    const memSlot = sum([...Array(n).keys()].map(w)) / n;
    const segSlot = (j: number) => sum([...Array(n).keys()].filter((i) => i >= j).map(w)) / n;
    const expected = [...Array(M).fill(memSlot), ...Array.from({ length: n }, (_, j) => segSlot(j))];
    for (let l = 0; l < cfg.layers; l++)
      assert.ok(maxAbsDiff(p.perLayer[l], expected) < 1e-6, `${cfg.compressedMemory ? 'ct' : 'txl'} layer ${l}`);
    const region = (name: string) => p.regions.find((r) => r.name === name)!;
    if (cfg.compressedMemory)
      assert.ok(
        Math.abs(region('compressed memory').perSlot / region('memory').perSlot - 1) < 1e-5,
        'no preference between compressed and plain memory',
      );
    assert.match(
      attentionMarkdown(p),
      cfg.compressedMemory ? /\| compressed memory \| 8 \| [0-9.e-]+ \| [0-9.e-]+ \| 1\.00x \|/ : /\| memory \|/,
    );
  }
});

test('a config without any memory is refused', async () => {
  const cfg = tinyConfig({ memory: 0, compressedMemory: 0, auxLoss: 'none' });
  await assert.rejects(attentionByAge(cfg, paramArrays(cfg), [file(100)]), /memory 0 and compressedMemory 0/);
});
