/** The generation floor bench: graph sizes read back from the ONNX file, and an end-to-end run. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { benchFloor, graphWeight } from '../src/bench/floor-bench.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { tempDir } from './helpers.js';

test('graphWeight counts the nodes, weight bytes and input bytes an exported graph holds', () => {
  const t = new OnnxTracer();
  const x = t.input('x', new Float32Array(6), [2, 3]);
  const w = t.param('w', Float32Array.of(1, 2, 3), [3]);
  t.output('y', t.mul(t.add(x, w), w)); // Add, Mul, and the output's Identity
  const file = path.join(tempDir(), 'g.onnx');
  fs.writeFileSync(file, t.toModel({ graphName: 'g' }));
  assert.deepEqual(graphWeight(file), { nodes: 3, weightBytes: 12, inputBytes: 24 });
});

test('the floor bench runs end to end and gives a finite figure for each of its rows', async () => {
  const rows = await benchFloor(['ct-tiny']);
  assert.deepEqual(
    rows.map((r) => r.unit),
    ['µs', 'µs', 'GB/s', 'samples/s'],
  );
  for (const r of rows) assert.ok(Number.isFinite(r.value), `${r.name}: ${r.value}`);
  // A difference of two timings (the per-kernel row) may come out negative on a busy machine; these may not.
  for (const k of [0, 2, 3]) assert.ok(rows[k].value > 0, `${rows[k].name}: ${rows[k].value}`);
  assert.match(rows[3].note, /\d+ nodes/);
});
