/**
 * The in-graph optimizer against tfjs's own AdamOptimizer: run eagerly through TfOps it must give
 * the same weights bit for bit; traced and run on onnxruntime, to float32 rounding.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import { adamStep, clipByGlobalNorm, globalNorm, TFJS_ADAM } from '../src/train/graph-optimizer.js';
import { tempDir } from './helpers.js';
import { maxAbsDiff, ops } from './model-helpers.js';

before(async () => {
  await initBackend('cpu');
});

const shapes = [[3, 4], [4], [2, 2, 2]];
const wave = (n: number, k: number, amp: number) =>
  Float32Array.from({ length: n }, (_, i) => amp * Math.sin(k + i * 1.3));
const size = (s: number[]) => s.reduce((a, d) => a * d, 1);
const LRS = [1e-3, 3e-4, 5e-4];
const grad = (step: number, i: number) => wave(size(shapes[i]), 7 * step + i, 0.5 + step);

test('Adam written over Ops, run eagerly, takes exactly the steps tfjs.train.adam takes', () => {
  const vars = shapes.map((s, i) => tf.variable(tf.tensor(wave(size(s), i, 1), s)));
  const opt = tf.train.adam(LRS[0]);
  let w = shapes.map((s, i) => tf.tensor(wave(size(s), i, 1), s));
  let state = {
    m: shapes.map((s) => tf.zeros(s)),
    v: shapes.map((s) => tf.zeros(s)),
    betaPowers: tf.tensor([TFJS_ADAM.beta1, TFJS_ADAM.beta2]),
  };
  for (let step = 0; step < 3; step++) {
    (opt as unknown as { learningRate: number }).learningRate = LRS[step];
    const g = shapes.map((s, i) => tf.tensor(grad(step, i), s));
    opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: g[i] })));
    const r = adamStep(ops, w, g, state, tf.tensor([LRS[step]]));
    w = r.weights;
    state = r.state;
  }
  vars.forEach((v, i) =>
    assert.deepEqual(Array.from(w[i].dataSync()), Array.from(v.dataSync()), `weight ${i} bit for bit`),
  );
});

test('clip + Adam traced into one graph and run on onnxruntime match the eager update', async () => {
  const clip = 0.5;
  const t = new OnnxTracer();
  const w = shapes.map((s, i) => t.input(`w.${i}`, wave(size(s), i, 1), s));
  const g = shapes.map((s, i) => t.input(`g.${i}`, grad(0, i), s));
  const m = shapes.map((s, i) => t.input(`m.${i}`, new Float32Array(size(s)), s));
  const v = shapes.map((s, i) => t.input(`v.${i}`, new Float32Array(size(s)), s));
  const bp = t.input('betaPowers', Float32Array.of(TFJS_ADAM.beta1, TFJS_ADAM.beta2), [2]);
  const lr = t.input('lr', Float32Array.of(LRS[0]), [1]);
  const norm = globalNorm(t, g);
  const r = adamStep(t, w, clipByGlobalNorm(t, g, norm, clip), { m, v, betaPowers: bp }, lr);
  t.output('norm', norm);
  r.weights.forEach((x, i) => t.output(`out.w.${i}`, x));
  r.state.m.forEach((x, i) => t.output(`out.m.${i}`, x));
  r.state.v.forEach((x, i) => t.output(`out.v.${i}`, x));
  t.output('out.betaPowers', r.state.betaPowers);
  const file = path.join(tempDir(), 'adam.onnx');
  fs.writeFileSync(file, t.toModel({ graphName: 'adam' }));
  const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });

  // The same three steps eagerly, clipping as the tfjs trainer does on the host.
  let ew = shapes.map((s, i) => tf.tensor(wave(size(s), i, 1), s));
  let es = {
    m: shapes.map((s) => tf.zeros(s)),
    v: shapes.map((s) => tf.zeros(s)),
    betaPowers: tf.tensor([0.9, 0.999]),
  };
  const feeds = Object.fromEntries([...t.exampleFeeds()].map(([k, x]) => [k, { data: x.data, shape: x.shape }]));
  for (let step = 0; step < 3; step++) {
    shapes.forEach((s, i) => (feeds[`g.${i}`] = { data: grad(step, i), shape: s }));
    feeds.lr = { data: Float32Array.of(LRS[step]), shape: [1] };
    const out = await exec.run(feeds);
    const eg = shapes.map((s, i) => tf.tensor(grad(step, i), s));
    const n = Math.sqrt(eg.reduce((a, x) => a + tf.sum(tf.square(x)).dataSync()[0], 0));
    assert.ok(Math.abs(out.norm[0] - n) < 1e-5 * n, `global norm ${out.norm[0]} vs ${n}`);
    const factor = n > clip ? clip / n : 1;
    const r2 = adamStep(
      ops,
      ew,
      eg.map((x) => tf.mul(x, factor)),
      es,
      tf.tensor([LRS[step]]),
    );
    ew = r2.weights;
    es = r2.state;
    shapes.forEach((s, i) => {
      const d = maxAbsDiff(out[`out.w.${i}`], ew[i].dataSync());
      assert.ok(d < 1e-6, `step ${step}, weight ${i}: onnxruntime and eager differ by ${d}`);
      feeds[`w.${i}`] = { data: out[`out.w.${i}`], shape: s };
      feeds[`m.${i}`] = { data: out[`out.m.${i}`], shape: s };
      feeds[`v.${i}`] = { data: out[`out.v.${i}`], shape: s };
    });
    feeds.betaPowers = { data: out['out.betaPowers'], shape: [2] };
  }
  await exec.dispose();
});
