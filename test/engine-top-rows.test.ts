/**
 * Most-used selection as a static graph (engine/top-rows.ts) against the host's sort, on scores
 * with exact ties (which must go to the later row) and on random ones; and no gradient to the scores.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gradients } from '../src/engine/onnx-grad.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { topRowsSelection } from '../src/engine/top-rows.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import { tempDir } from './helpers.js';

async function runTraced(B: number, n: number, d: number, m: number, score: Float32Array, x: Float32Array) {
  const t = new OnnxTracer();
  const xs = t.input('x', x, [B, n, d]);
  const s = t.input('score', score, [B, n]);
  const picked = t.topRows(xs, s, m);
  t.output('picked', picked);
  const loss = t.sum(t.mul(picked, picked), [0, 1, 2]);
  const [gx, gs] = gradients(t, t.reshape(loss, [1]), [xs, s]);
  t.output('gx', gx!);
  assert.equal(gs, null, 'no gradient reaches the scores');
  const file = path.join(tempDir(), 'top-rows.onnx');
  fs.writeFileSync(file, t.toModel({ graphName: 'top_rows' }));
  const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
  try {
    return await exec.run({ x: { data: x, shape: [B, n, d] }, score: { data: score, shape: [B, n] } });
  } finally {
    await exec.dispose();
  }
}

/** The host's answer: rows picked by the selection matrix, and the gradient 2x on picked rows. */
function expected(B: number, n: number, d: number, m: number, score: Float32Array, x: Float32Array) {
  const sel = topRowsSelection(score, B, n, m);
  const picked = new Float32Array(B * m * d);
  const gx = new Float32Array(B * n * d);
  for (let b = 0; b < B; b++)
    for (let k = 0; k < m; k++)
      for (let j = 0; j < n; j++) {
        if (!sel[(b * m + k) * n + j]) continue;
        for (let c = 0; c < d; c++) {
          picked[(b * m + k) * d + c] = x[(b * n + j) * d + c];
          gx[(b * n + j) * d + c] = 2 * x[(b * n + j) * d + c];
        }
      }
  return { picked, gx };
}

test('traced top rows pick what the host picks, ties to the later row, in order', async () => {
  const B = 3;
  const n = 12;
  const d = 2;
  const m = 4;
  const x = Float32Array.from({ length: B * n * d }, (_, i) => i + 1);
  const score = Float32Array.from([
    // row 0: four-way tie at the top: the four latest win
    ...[5, 1, 5, 2, 5, 0, 5, 3, 5, 1, 0, 2],
    // row 1: all equal: the last m rows
    ...new Array<number>(n).fill(0.25),
    // row 2: distinct, best rows scattered
    ...[0.1, 0.9, 0.2, 0.8, 0.05, 0.7, 0.3, 0.6, 0.01, 0.02, 0.03, 0.5],
  ]);
  const got = await runTraced(B, n, d, m, score, x);
  const want = expected(B, n, d, m, score, x);
  assert.deepEqual(Array.from(got.picked), Array.from(want.picked));
  assert.deepEqual(Array.from(got.gx), Array.from(want.gx));
  // Spelled out for row 0: rows 2, 4, 6, 8 (the later of the five 5s), in order.
  assert.deepEqual(
    Array.from(got.picked.subarray(0, m * d)),
    [2, 4, 6, 8].flatMap((j) => [2 * j + 1, 2 * j + 2]),
  );
});

test('traced top rows equal the host on random scores (attention-like, 64 rows keep 16)', async () => {
  const B = 4;
  const n = 64;
  const d = 3;
  const m = 16;
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const score = Float32Array.from({ length: B * n }, () => rand() / n);
  const x = Float32Array.from({ length: B * n * d }, () => rand() - 0.5);
  const got = await runTraced(B, n, d, m, score, x);
  const want = expected(B, n, d, m, score, x);
  assert.deepEqual(Array.from(got.picked), Array.from(want.picked));
  assert.deepEqual(Array.from(got.gx), Array.from(want.gx));
});
