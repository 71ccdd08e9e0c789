/**
 * The reverse pass over traced graphs against a second path: tfjs's own autodiff on the same
 * model code, weights, batch and carried state. Gradients of NLL + aux for every parameter.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { gradients } from '../src/engine/onnx-grad.js';
import { OnnxTracer, type TraceTensor } from '../src/engine/onnx-trace.js';
import type { Ops, Tensor } from '../src/engine/ops.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import type { CtState } from '../src/models/compressive.js';
import { nllLoss } from '../src/models/loss.js';
import { initParams } from '../src/models/param-spec.js';
import { familyOf, type ModelConfig, modelPreset, paramSpecOf } from '../src/models/registry.js';
import type { ModelState } from '../src/models/sequence-model.js';
import { tempDir } from './helpers.js';
import { codes, ops } from './model-helpers.js';

before(async () => {
  await initBackend('cpu');
});

type Arrays = Map<string, { shape: number[]; data: Float32Array }>;

function weights(cfg: ModelConfig): Arrays {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, 5, 0.2);
  // Non-zero biases and norm offsets so every parameter's gradient is exercised.
  return new Map(
    specs.map((s) => [
      s.name,
      { shape: s.shape, data: v.get(s.name)!.map((x, i) => x + 0.1 * Math.sin(1 + i * 0.7 + s.name.length)) },
    ]),
  );
}

/** Carried state with every memory slot valid, so the auxiliary loss is active; seeded values. */
function fullState(cfg: ModelConfig, B: number): { shape: number[]; data: Float32Array }[] {
  const model = familyOf(cfg).sequenceModel<tf.Tensor>(cfg);
  const s = model.initialState(ops, B);
  const shapes = model.stateTensors(s).map((t) => [...t.shape]);
  model.stateTensors(s).forEach((t) => t.dispose());
  let k = 3;
  return shapes.map((shape) => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => Math.sin(k++ * 0.37)),
  }));
}

function stateOf<T extends Tensor>(cfg: ModelConfig, o: Ops<T>, B: number, ts: T[]): ModelState {
  if (cfg.kind === 'wavenet') return { batch: B, history: ts } as ModelState;
  const L = ts.length / 2;
  const full: CtState<T> = {
    batch: B,
    mem: ts.slice(0, L),
    cmem: ts.slice(L),
    memValid: new Int32Array(B).fill(cfg.memory),
    cmemValid: new Int32Array(B).fill(cfg.compressedMemory),
  };
  return full;
}

for (const name of ['ct-tiny', 'txl-tiny', 'wavenet-tiny']) {
  test(`${name}: traced reverse-mode gradients of NLL + aux equal tfjs autodiff`, async () => {
    const cfg = modelPreset(name);
    const B = 2;
    const family = familyOf(cfg);
    const w = family.trainingWindows(cfg);
    const n = w.kind === 'crops' ? 40 : w.segment;
    const inputs = codes(B * n, 11);
    const targets = codes(B * n, 12);
    const mask = Float32Array.from({ length: B * n }, (_, i) => (i % n >= 3 ? 1 : 0));
    const arrays = weights(cfg);
    const state = fullState(cfg, B);
    const names = [...arrays.keys()];

    // tfjs: variables and autodiff.
    const vars = names.map((k) => tf.variable(tf.tensor(arrays.get(k)!.data, arrays.get(k)!.shape)));
    const p = new Map(names.map((k, i) => [k, vars[i] as tf.Tensor]));
    const model = family.sequenceModel<tf.Tensor>(cfg);
    const st = state.map((s) => tf.tensor(s.data, s.shape));
    let auxUsed = false;
    const { grads } = tf.variableGrads(() => {
      const out = model.forward(ops, p, inputs, null, stateOf(cfg, ops, B, st));
      const nll = nllLoss(ops, out.logits, targets, mask);
      auxUsed = out.aux !== null;
      return (out.aux ? tf.add(nll, out.aux) : nll) as tf.Scalar;
    }, vars);
    if (cfg.kind === 'transformer' && cfg.compressedMemory > 0) assert.ok(auxUsed, 'the aux loss takes part');

    // The same through the tracer, gradients emitted by the reverse pass, run on onnxruntime.
    const t = new OnnxTracer();
    const tp = new Map(names.map((k) => [k, t.input(`p.${k}`, arrays.get(k)!.data, arrays.get(k)!.shape)]));
    const ts = state.map((s, i) => t.input(`s.${i}`, s.data, s.shape));
    const tmodel = family.sequenceModel<TraceTensor>(cfg);
    const out = tmodel.forward(t, tp, inputs, null, stateOf(cfg, t, B, ts));
    const nll = nllLoss(t, out.logits, targets, mask);
    const loss = out.aux ? t.add(nll, out.aux) : nll;
    const g = gradients(
      t,
      loss,
      names.map((k) => tp.get(k)!),
    );
    g.forEach((gi, i) => gi && t.output(`g.${names[i]}`, gi));
    t.output('loss', loss);
    const file = path.join(tempDir(), 'grad.onnx');
    fs.writeFileSync(file, t.toModel({ graphName: 'grad' }));
    const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
    const feeds = Object.fromEntries([...t.exampleFeeds()].map(([k, v]) => [k, { data: v.data, shape: v.shape }]));
    const res = await exec.run(feeds);
    await exec.dispose();

    let worst = 0;
    let checked = 0;
    names.forEach((k, i) => {
      const expected = grads[vars[i].name]?.dataSync() as Float32Array | undefined;
      const got = g[i] ? res[`g.${k}`] : undefined;
      if (!expected) {
        if (got)
          assert.ok(
            got.every((v) => v === 0),
            `${k}: tfjs has no gradient, ours must be zero`,
          );
        return;
      }
      assert.ok(got, `${k}: a gradient where tfjs has one`);
      const scale = Math.max(1e-3, ...Array.from(expected, Math.abs));
      for (let j = 0; j < expected.length; j++) worst = Math.max(worst, Math.abs(got[j] - expected[j]) / scale);
      checked++;
    });
    assert.ok(checked >= names.length - 4, `${checked} of ${names.length} parameters compared`);
    assert.ok(worst < 1e-3, `largest gradient difference ${worst} (relative to each tensor's largest entry)`);
    tf.dispose([...vars, ...st, ...Object.values(grads)]);
  });
}
