/** The generation floor bench: graph sizes read back from the ONNX file, and an end-to-end run. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { benchFloor, graphWeight } from '../src/bench/floor-bench.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { tempDir } from './helpers.js';

test('graphWeight counts the graph onnxruntime runs: constants folded, weights as folded', async () => {
  const t = new OnnxTracer();
  const x = t.input('x', new Float32Array(6), [2, 3]);
  // Concat of two weights: folded by onnxruntime into one [3] initializer, so no kernel.
  const w = t.concat([t.param('a', Float32Array.of(1), [1]), t.param('b', Float32Array.of(2, 3), [2])], 0);
  t.output('y', t.mul(t.add(x, w), w));
  t.output('z', t.add(x, x));
  const file = path.join(tempDir(), 'g.onnx');
  fs.writeFileSync(file, t.toModel({ graphName: 'g' }));
  // As exported: Concat, Add, Mul, Add and the outputs' Identity nodes; run: Add, Mul, Add.
  assert.deepEqual(await graphWeight(file), { nodes: 3, inputs: 1, outputs: 2, weightBytes: 12, inputBytes: 24 });
});

test('the floor bench runs end to end and gives a finite figure for each of its rows', async () => {
  const rows = await benchFloor(['ct-tiny']);
  assert.deepEqual(
    rows.map((r) => r.unit),
    ['µs', 'µs', 'µs', 'µs', 'GB/s', 'samples/s'],
  );
  for (const r of rows) assert.ok(Number.isFinite(r.value), `${r.name}: ${r.value}`);
  // A difference of two timings (the per-kernel, per-input and per-output rows) may come out negative on a
  // busy machine; these may not.
  for (const k of [0, 4, 5]) assert.ok(rows[k].value > 0, `${rows[k].name}: ${rows[k].value}`);
  assert.match(rows[5].note, /\d+ kernels, \d+ inputs, \d+ outputs/);
});
