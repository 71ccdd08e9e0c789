import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { initBackend, tf } from '../src/engine/backend.js';
import {
  exportAdam,
  type F32Map,
  getAdamLearningRate,
  importAdam,
  setAdamLearningRate,
  slotKey,
} from '../src/train/adam-state.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { learningRate } from '../src/train/schedule.js';
import { tempDir } from './helpers.js';

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

// A small fixed problem: sum((s * (X W) + b - T)^2), three variables including a scalar.
const X = Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i * 1.7));
const T = Array.from({ length: 5 * 4 }, (_, i) => Math.cos(i * 0.9));
const INIT: Weights = new Map([
  ['w', { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i * 0.31 + 1) * 0.5) }],
  ['b', { shape: [4], data: new Float32Array([0.1, -0.2, 0.05, 0]) }],
  ['s', { shape: [], data: new Float32Array([0.8]) }],
]);
const SCHEDULE = { warmupSteps: 3, totalSteps: 20, minLr: 1e-3, peakLr: 5e-2 };
// After 5 steps, pow(0.999, 6) != 0.999 * ... * 0.999 in float32 (cpu and wasm), and on this
// problem tfjs's own setWeights resume then ends on different weights: the test below shows it.
const N = 5;

let runs = 0;
function makeVars(w: Weights): tf.Variable[] {
  const id = runs++;
  return tf.tidy(() =>
    [...w].map(([name, t]) => tf.variable(tf.tensor(t.data, t.shape, 'float32'), true, `adamtest${id}/${name}`)),
  );
}

function readVars(vars: tf.Variable[]): Weights {
  return new Map(
    [...INIT.keys()].map((name, i) => [name, { shape: [...vars[i].shape], data: vars[i].dataSync() as Float32Array }]),
  );
}

/** Steps [from, to) as the trainer does them: gradients by position, lr from the schedule. */
function train(opt: tf.AdamOptimizer, vars: tf.Variable[], from: number, to: number): void {
  for (let step = from; step < to; step++) {
    setAdamLearningRate(opt, learningRate(step, SCHEDULE));
    tf.tidy(() => {
      const x = tf.tensor2d(X, [5, 3]);
      const t = tf.tensor2d(T, [5, 4]);
      const [w, b, s] = vars;
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(tf.sub(tf.add(tf.mul(s, tf.matMul(x, w)), b), t))) as tf.Scalar,
        vars,
      );
      opt.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
    });
  }
}

function bytesOf(w: Weights): Buffer[] {
  return [...w.values()].map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(
    `adam-state (${backend}): N steps, checkpoint, fresh optimizer and variables, ` +
      'N more == 2N straight, bit for bit',
    async () => {
      await initBackend(backend);
      const before = tf.memory().numTensors;

      const straightVars = makeVars(INIT);
      const straight = tf.train.adam(0.01);
      train(straight, straightVars, 0, 2 * N);
      const want = readVars(straightVars);
      const wantAdam = await exportAdam(straight);

      const firstVars = makeVars(INIT);
      const first = tf.train.adam(0.01);
      train(first, firstVars, 0, N);
      const dir = tempDir();
      const file = path.join(dir, 'checkpoint.safetensors');
      saveCheckpoint(file, {
        model: 'test',
        config: {},
        params: readVars(firstVars),
        optimizer: await exportAdam(first),
        state: { step: N },
      });
      first.dispose();
      tf.dispose(firstVars);

      const ck = loadCheckpoint(file, { model: 'test' });
      const resumedVars = makeVars(ck.params);
      const resumed = tf.train.adam(0.01);
      await importAdam(resumed, ck.optimizer, resumedVars);
      train(resumed, resumedVars, (ck.state as { step: number }).step, 2 * N);
      const got = readVars(resumedVars);

      assert.deepEqual(bytesOf(got), bytesOf(want));
      // The optimizers agree too, so every later step would as well.
      const gotAdam = await exportAdam(resumed);
      assert.deepEqual([...gotAdam.keys()], [...wantAdam.keys()]);
      for (const [k, t] of wantAdam)
        assert.deepEqual(Buffer.from(gotAdam.get(k)!.data.buffer), Buffer.from(t.data.buffer), k);
      assert.deepEqual([...gotAdam.get('iterations')!.data], [0, 2 * N]);
      // Training moved the weights: the comparison is not between two untouched copies.
      assert.notDeepEqual(bytesOf(want), bytesOf(INIT));

      tf.dispose([...straightVars, ...resumedVars]);
      straight.dispose();
      resumed.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      fs.rmSync(dir, { recursive: true });
    },
  );

  test(
    `adam-state (${backend}): tfjs setWeights alone recomputes the beta powers inexactly, ` + 'and the run drifts',
    async () => {
      await initBackend(backend);
      const straightVars = makeVars(INIT);
      const straight = tf.train.adam(0.01);
      train(straight, straightVars, 0, 2 * N);
      const vars = makeVars(INIT);
      const opt = tf.train.adam(0.01);
      train(opt, vars, 0, N);
      const exact = await exportAdam(opt);
      const naive = tf.train.adam(0.01);
      const weights = await opt.getWeights();
      await naive.setWeights(weights);
      weights[0].tensor.dispose();
      const drift = (await exportAdam(naive)).get('beta_powers')!.data;
      // Same iterations and moments, but 0.999^6 as pow() differs from five float32 products.
      assert.notEqual(drift[1], exact.get('beta_powers')!.data[1]);
      const fixed = tf.train.adam(0.01);
      await importAdam(fixed, exact);
      assert.deepEqual([...(await exportAdam(fixed)).get('beta_powers')!.data], [...exact.get('beta_powers')!.data]);
      // Continuing the naive copy does not reproduce the straight run: bit-identity is not automatic.
      const naiveVars = makeVars(readVars(vars));
      train(naive, naiveVars, N, 2 * N);
      assert.notDeepEqual(bytesOf(readVars(naiveVars)), bytesOf(readVars(straightVars)));
      tf.dispose([...straightVars, ...vars, ...naiveVars]);
      [straight, opt, naive, fixed].forEach((o) => o.dispose());
    },
  );
}

test('adam-state: a fresh optimizer exports its initial state, and importing it changes nothing', async () => {
  await initBackend('cpu');
  const fresh = tf.train.adam(0.01, 0.8, 0.99, 1e-6);
  const state = await exportAdam(fresh);
  fresh.dispose();
  assert.deepEqual([...state.keys()], ['iterations', 'beta_powers', 'hyper']);
  assert.deepEqual([...state.get('iterations')!.data], [0, 0]);
  assert.deepEqual([...state.get('beta_powers')!.data], [Math.fround(0.8), Math.fround(0.99)]);
  assert.deepEqual([...state.get('hyper')!.data], [0.8, 0.99, 1e-6].map(Math.fround));
  const opt = tf.train.adam(0.01, 0.8, 0.99, 1e-6);
  await importAdam(opt, state);
  assert.deepEqual(await exportAdam(opt), state);
  opt.dispose();
});

test('adam-state: the learning rate is assignable per step and takes effect', async () => {
  await initBackend('cpu');
  const opt = tf.train.adam(0.01);
  setAdamLearningRate(opt, 0);
  assert.equal(getAdamLearningRate(opt), 0);
  const vars = makeVars(INIT);
  tf.tidy(() => opt.applyGradients(vars.map((v) => ({ name: v.name, tensor: tf.onesLike(v) }))));
  assert.deepEqual(bytesOf(readVars(vars)), bytesOf(INIT), 'lr 0 must not move the weights');
  setAdamLearningRate(opt, 0.5);
  tf.tidy(() => opt.applyGradients(vars.map((v) => ({ name: v.name, tensor: tf.onesLike(v) }))));
  // Second step of constant gradient 1: m_hat = v_hat = 1, so each weight moves by lr / (1 + eps),
  // up to float32 cancellation in 1 - beta2^2 (relative error ~1e-5).
  const moved = readVars(vars).get('b')!.data;
  INIT.get('b')!.data.forEach((x, i) => assert.ok(Math.abs(moved[i] - (x - 0.5)) < 5e-5, `b[${i}] = ${moved[i]}`));
  assert.throws(() => setAdamLearningRate(opt, NaN), /finite number/);
  tf.dispose(vars);
  opt.dispose();
});

test('adam-state: mismatched or malformed state is refused; re-import frees the old slots', async () => {
  await initBackend('cpu');
  const vars = makeVars(INIT);
  const opt = tf.train.adam(0.01);
  train(opt, vars, 0, 2);
  const state = await exportAdam(opt);
  assert.deepEqual(
    [...state.keys()].filter((k) => k.startsWith('slot/')),
    [0, 1, 2].flatMap((i) => [slotKey(i, 'm'), slotKey(i, 'v')]),
  );

  await assert.rejects(
    importAdam(tf.train.adam(0.01, 0.95), state),
    /saved with beta1=0\.8999999761581421, but this optimizer has beta1=0\.95/,
  );
  await assert.rejects(
    importAdam(tf.train.adam(0.01), state, [vars[1], vars[0], vars[2]]),
    /'slot\/0000\/m' has shape \[3, 4\], expected \[4\]/,
  );
  await assert.rejects(
    importAdam(tf.train.adam(0.01), state, vars.slice(0, 2)),
    /moments for 3 variables, but 2 were given/,
  );
  const missing: F32Map = new Map(state);
  missing.delete(slotKey(1, 'v'));
  await assert.rejects(importAdam(tf.train.adam(0.01), missing), /missing 'slot\/0001\/v'/);
  const gap: F32Map = new Map(state);
  gap.delete(slotKey(1, 'm'));
  await assert.rejects(importAdam(tf.train.adam(0.01), gap), /unexpected key 'slot\/0001\/v'/);
  const noPowers: F32Map = new Map(state);
  noPowers.delete('beta_powers');
  await assert.rejects(importAdam(tf.train.adam(0.01), noPowers), /missing 'beta_powers'/);

  // Importing over live slots replaces them without leaking the old ones.
  const count = tf.memory().numTensors;
  await importAdam(opt, state, vars);
  assert.equal(tf.memory().numTensors, count);
  tf.dispose(vars);
  opt.dispose();
});
