/**
 * The optimizer side of the onnxruntime trainer (train/ort-step.ts with train/graph-optimizer.ts):
 *
 * - a non-finite step is skipped: weights and Adam state untouched bit for bit, the step reported
 *   skipped, and the run continues exactly as if the step had not happened (both engines, so the
 *   onnxruntime behaviour is held to the tfjs trainer's); in a real run, each skipped micro-batch
 *   is logged and counted, and a step whose micro-batches all fail is marked skipped in metrics.jsonl;
 * - the reported gradient norm is the true global norm, and each update is Adam (tfjs's
 *   arithmetic) on the gradient clipped to it, computed independently on the host in float64 from
 *   the training graph's gradients — with clipping active, inactive, and off, at varying rates
 *   (one of them 0), and on the clipped mean of an accumulation cycle;
 * - a run on engine onnxruntime applies the learning-rate schedule: its metrics log the schedule's
 *   rate for every step and its losses follow the tfjs run's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { Rng } from '../src/data/rng.js';
import { initBackend } from '../src/engine/backend.js';
import { loadRun } from '../src/models/model-files.js';
import type { ParamArrays } from '../src/models/model-files.js';
import { type ModelConfig, modelPreset } from '../src/models/registry.js';
import { slotKey, type F32Map } from '../src/train/adam-state.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { TFJS_ADAM } from '../src/train/graph-optimizer.js';
import { OrtTrainStep } from '../src/train/ort-step.js';
import type { TrainOptions } from '../src/train/run-options.js';
import { learningRate } from '../src/train/schedule.js';
import type { StepEngine } from '../src/train/step-engine.js';
import { TrainStep } from '../src/train/tf-step.js';
import { train } from '../src/train/trainer.js';
import { smallCorpus } from './corpus-helpers.js';
import { tempDir } from './helpers.js';
import { initWeights, OrtGradientGraph, relErr, syntheticBatch } from './ort-train-helpers.js';

let corpus = '';
before(async () => {
  await initBackend('wasm');
  corpus = await smallCorpus();
});

const B = 2;

type Engine = 'tfjs' | 'onnxruntime';

async function open(engine: Engine, cfg: ModelConfig, opts: { lr: number; clip: number; seed: number }) {
  const init = initWeights(cfg, opts.seed);
  const e: StepEngine =
    engine === 'tfjs'
      ? new TrainStep(cfg, init, B, opts)
      : await OrtTrainStep.open(cfg, init, B, { ...opts, threads: 1, device: 'cpu' });
  return e;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Same keys, same shapes, same bytes (NaN payloads included). */
function assertSameTensors(a: ParamArrays | F32Map, b: ParamArrays | F32Map, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: keys`);
  for (const [k, t] of a) {
    assert.deepEqual(t.shape, b.get(k)!.shape, `${what}: ${k} shape`);
    assert.ok(bytes(t.data).equals(bytes(b.get(k)!.data)), `${what}: ${k} differs`);
  }
}

for (const engine of ['onnxruntime', 'tfjs'] as const) {
  for (const name of ['ct-tiny', 'wavenet-tiny']) {
    const title = `${engine}, ${name}: a non-finite step is skipped, weights and Adam untouched, nothing changed after`;
    test(title, async () => {
      const cfg = modelPreset(name);
      const opts = { lr: 2e-3, clip: 0.1, seed: 4 };
      const batch = (k: number) => syntheticBatch(cfg, B, k);
      const a = await open(engine, cfg, opts);
      const b = await open(engine, cfg, opts);
      try {
        for (const e of [a, b]) for (const k of [0, 1]) assert.ok(!(await e.step(batch(k))).skipped);
        const state = a.exportState();
        const params = a.exportParams();
        const optimizer = await a.exportOptimizer();
        // Carried state that makes the loss non-finite: a NaN and an infinity in the first tensor.
        // (A crop resets its row, but 0 x NaN is still NaN, so WaveNet's loss is non-finite too.)
        const poisoned = structuredClone(state);
        poisoned.model.tensors[0].data[0] = NaN;
        poisoned.model.tensors[0].data[1] = Infinity;
        a.importState(poisoned);
        const r = await a.step(batch(2));
        assert.ok(r.skipped, `reported skipped (loss ${r.loss}, norm ${r.gradNorm})`);
        assert.equal(r.applied, false);
        assert.ok(!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm), 'the step was non-finite');
        assertSameTensors(a.exportParams(), params, 'weights after the skipped step');
        assertSameTensors(await a.exportOptimizer(), optimizer, 'Adam state after the skipped step');
        // Back on clean state, the next step is the one a run without the bad step takes: bit for bit.
        a.importState(state);
        b.importState(state);
        const ra = await a.step(batch(3));
        const rb = await b.step(batch(3));
        assert.ok(ra.applied && !ra.skipped);
        assert.equal(ra.loss, rb.loss);
        assertSameTensors(a.exportParams(), b.exportParams(), 'weights after the next step');
        assertSameTensors(await a.exportOptimizer(), await b.exportOptimizer(), 'Adam state after the next step');
      } finally {
        await a.dispose();
        await b.dispose();
      }
    });
  }
}

test('onnxruntime: the reported norm is the global norm; each update is Adam on the clipped gradient', async (t) => {
  const cfg = modelPreset('ct-tiny');
  // Rates per update, one of them 0 (the weights must not move; the moments still do).
  const lrs = [1e-3, 3e-3, 0, 2e-3, 5e-4, 1e-3];
  const seed = 6;
  const summary: string[] = [];
  const setups = [
    { clip: 0.1, accumulate: 1 }, // every step clipped (ct-tiny's norms are ~1)
    { clip: 1000, accumulate: 1 }, // never clipped
    { clip: 0, accumulate: 1 }, // clipping off
    { clip: 0.1, accumulate: 3 }, // the clipped mean of 3 micro-batches' gradients
  ];
  for (const { clip, accumulate } of setups) {
    const ort = await OrtTrainStep.open(cfg, initWeights(cfg, seed), B, {
      lr: lrs[0],
      clip,
      seed,
      accumulate,
      threads: 1,
      device: 'cpu',
    });
    // The same training graph, traced with its gradients as outputs: the gradient Adam must see. It
    // carries its own state (the engine exports none mid-cycle).
    const grad = await OrtGradientGraph.open(cfg, B, initWeights(cfg, seed));
    const rng = new Rng(0);
    let state = grad.zeroState();
    let micro = 0;
    let worstNorm = 0;
    let worstW = 0;
    let worstMoments = 0;
    let unclippedMiss = 0;
    const normOf = (gs: Iterable<ArrayLike<number> | null>) => {
      let sq = 0;
      for (const g of gs) if (g) for (let j = 0; j < g.length; j++) sq += g[j] * g[j];
      return Math.sqrt(sq);
    };
    try {
      for (let k = 0; k < lrs.length; k++) {
        const w0 = ort.exportParams();
        const o0 = ort.exportOptimizer();
        const sum = new Map([...w0].map(([name, w]) => [name, new Float64Array(w.data.length)]));
        ort.setLearningRate(lrs[k]);
        let applied = false;
        for (let a = 0; a < accumulate; a++) {
          const batch = syntheticBatch(cfg, B, micro++);
          const g = await grad.run(grad.graph.feeds(batch, rng), w0, state);
          state = g.state;
          const r = await ort.step(batch);
          assert.ok(Math.abs(r.loss - g.loss) <= 1e-6 * g.loss, `step ${k}.${a}: loss ${r.loss} vs ${g.loss}`);
          // The reported norm is this micro-batch's global gradient norm, summed here in float64.
          const norm = normOf(g.grads.values());
          const normErr = Math.abs(r.gradNorm - norm) / norm;
          worstNorm = Math.max(worstNorm, normErr);
          assert.ok(normErr <= 1e-5, `step ${k}.${a}: reported norm ${r.gradNorm} vs ${norm}`);
          for (const [name, gi] of g.grads) if (gi) sum.get(name)!.forEach((x, j, arr) => (arr[j] = x + gi[j]));
          applied = r.applied;
          if (a < accumulate - 1) {
            assert.equal(r.applied, false, `step ${k}.${a}: mid-cycle, nothing applied`);
            assertSameTensors(ort.exportParams(), w0, `step ${k}.${a}: weights mid-cycle`);
            assertSameTensors(ort.exportOptimizer(), o0, `step ${k}.${a}: Adam mid-cycle`);
          }
        }
        assert.ok(applied, `step ${k}: applied on the cycle's last micro-batch`);
        // What Adam must receive: the mean gradient of the cycle, clipped by its own global norm.
        const mean = new Map([...sum].map(([name, x]) => [name, x.map((v) => v / accumulate)]));
        const norm = normOf(mean.values());
        if (clip === 0.1) assert.ok(norm > clip, `step ${k}: the gradient (norm ${norm}) is clipped`);
        if (clip === 1000) assert.ok(norm < clip, `step ${k}: the gradient (norm ${norm}) is not clipped`);
        const factor = clip > 0 ? clip / Math.max(norm, clip) : 1;
        const expected = hostAdam(w0, o0, mean, factor, lrs[k]);
        const unclipped = hostAdam(w0, o0, mean, 1, lrs[k]);
        const w1 = ort.exportParams();
        const o1 = ort.exportOptimizer();
        assert.deepEqual(Array.from(o1.get('beta_powers')!.data), expected.betaPowers, `step ${k}: beta powers`);
        assert.deepEqual(Array.from(o1.get('iterations')!.data), [0, k + 1]);
        [...w0.keys()].forEach((name, i) => {
          const got = w1.get(name)!.data;
          const want = expected.weights.get(name)!;
          const before = w0.get(name)!.data;
          if (lrs[k] === 0) assert.ok(bytes(got).equals(bytes(before)), `step ${k}: ${name} moved at rate 0`);
          // Per weight: a float32 rounding of w (2^-23 |w|) plus 1e-3 of the step Adam can take (lr);
          // a wrong clip factor, moment or bias correction moves weights by O(lr).
          for (let j = 0; j < got.length; j++) {
            const err = Math.abs(got[j] - want[j]);
            const allowed = 2 ** -23 * Math.abs(want[j]) + 1e-3 * lrs[k];
            worstW = Math.max(worstW, lrs[k] > 0 ? err / lrs[k] : 0);
            assert.ok(err <= allowed, `step ${k} clip ${clip}: ${name}[${j}] = ${got[j]}, host Adam ${want[j]}`);
            if (lrs[k] > 0)
              unclippedMiss = Math.max(unclippedMiss, Math.abs(got[j] - unclipped.weights.get(name)![j]) / lrs[k]);
          }
          for (const which of ['m', 'v'] as const) {
            const e = relErr(o1.get(slotKey(i, which))!.data, expected[which].get(name)!);
            worstMoments = Math.max(worstMoments, e);
            assert.ok(e <= 1e-5, `step ${k}: Adam ${which} of ${name}: relErr ${e}`);
          }
        });
      }
      // The check can tell: where the gradient was clipped, Adam on the unclipped gradient lands
      // elsewhere (Adam is scale-free within a step, but the clip factor changes between steps).
      if (clip === 0.1) assert.ok(unclippedMiss > 0.05, `unclipped Adam differs by ${unclippedMiss} lr`);
      else assert.ok(unclippedMiss <= 1e-3, `clip ${clip} never clips: ${unclippedMiss}`);
      summary.push(
        `clip ${clip}, accumulate ${accumulate}: norm relErr ${worstNorm.toExponential(2)}, ` +
          `weights within ${worstW.toExponential(2)} lr, moments relErr ${worstMoments.toExponential(2)}, ` +
          `unclipped Adam would be ${unclippedMiss.toExponential(2)} lr away`,
      );
    } finally {
      await ort.dispose();
      await grad.dispose();
    }
  }
  t.diagnostic(summary.join('; '));
});

/**
 * tfjs 4.22's Adam (train/graph-optimizer.ts documents it) in float64 from an exported state:
 * m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2, w' = w - lr (m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps),
 * with g the gradient times the clip factor and b^t the carried beta powers.
 */
function hostAdam(w: ParamArrays, opt: F32Map, grads: Map<string, ArrayLike<number>>, factor: number, lr: number) {
  const { beta1: b1, beta2: b2, epsilon: eps } = TFJS_ADAM;
  const [p1, p2] = opt.get('beta_powers')!.data;
  const weights = new Map<string, Float64Array>();
  const m = new Map<string, Float64Array>();
  const v = new Map<string, Float64Array>();
  [...w.keys()].forEach((name, i) => {
    const g = grads.get(name);
    const m0 = opt.get(slotKey(i, 'm'))!.data;
    const v0 = opt.get(slotKey(i, 'v'))!.data;
    const w0 = w.get(name)!.data;
    const mi = new Float64Array(w0.length);
    const vi = new Float64Array(w0.length);
    const wi = new Float64Array(w0.length);
    for (let j = 0; j < w0.length; j++) {
      const gj = g![j] * factor;
      mi[j] = b1 * m0[j] + (1 - b1) * gj;
      vi[j] = b2 * v0[j] + (1 - b2) * gj * gj;
      wi[j] = w0[j] - (lr * (mi[j] / (1 - p1))) / (Math.sqrt(vi[j] / (1 - p2)) + eps);
    }
    weights.set(name, wi);
    m.set(name, mi);
    v.set(name, vi);
  });
  // The beta powers are float32 products (of float32 values: exact in float64, then rounded once).
  return { weights, m, v, betaPowers: [Math.fround(p1 * Math.fround(b1)), Math.fround(p2 * Math.fround(b2))] };
}

function runOpts(run: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data: [corpus],
    run,
    model: modelPreset('ct-tiny'),
    batch: B,
    steps: 12,
    peakLr: 3e-3,
    minLr: 1e-5,
    warmup: 4,
    clip: 0.1,
    accumulate: 1,
    validEvery: 1000,
    validSamples: 2000,
    checkpointEvery: 1000,
    seed: 2,
    threads: 1,
    ...over,
  };
}

function trainLines(run: string): Record<string, number | boolean>[] {
  return fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.nll !== undefined);
}

test('a run on engine onnxruntime follows the learning-rate schedule, step for step with tfjs', async (t) => {
  const root = tempDir();
  const runs = {
    tfjs: path.join(root, 'tfjs'),
    onnxruntime: path.join(root, 'ort'),
    constant: path.join(root, 'ort-constant'),
  };
  await train(runOpts(runs.tfjs, { engine: 'tfjs' }));
  await train(runOpts(runs.onnxruntime, { engine: 'onnxruntime' }));
  // Control: the same run at a constant rate, to show the losses tell schedules apart.
  await train(runOpts(runs.constant, { engine: 'onnxruntime', minLr: 3e-3 }));
  assert.equal(JSON.parse(fs.readFileSync(path.join(runs.onnxruntime, 'train.json'), 'utf8')).engine, 'onnxruntime');
  const schedule = { warmupSteps: 4, totalSteps: 12, minLr: 1e-5, peakLr: 3e-3 };
  const [tf, ort, constant] = [runs.tfjs, runs.onnxruntime, runs.constant].map(trainLines);
  assert.deepEqual(
    ort.map((m) => m.step),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  let worst = 0;
  ort.forEach((m, i) => {
    // Step s (1-based) applies the rate of the schedule at s - 1: warm-up from minLr, then the cosine.
    assert.equal(m.lr, learningRate(i, schedule), `step ${m.step}: lr`);
    assert.equal(m.lr, tf[i].lr, `step ${m.step}: the same rate as tfjs`);
    assert.equal(m.skipped, false);
    const d = Math.abs((m.loss as number) - (tf[i].loss as number));
    worst = Math.max(worst, d);
    assert.ok(d <= 1e-4, `step ${m.step}: loss ${m.loss} on onnxruntime vs ${tf[i].loss} on tfjs`);
  });
  const apart = Math.max(...ort.map((m, i) => Math.abs((m.loss as number) - (constant[i].loss as number))));
  assert.ok(apart > 100 * Math.max(worst, 1e-5), `a constant rate gives other losses (${apart} vs ${worst})`);
  const wa = loadRun(runs.tfjs).params;
  const wb = loadRun(runs.onnxruntime).params;
  let wErr = 0;
  for (const [k, v] of wa) wErr = Math.max(wErr, relErr(wb.get(k)!.data, v.data));
  t.diagnostic(
    `12 scheduled steps: loss |onnxruntime - tfjs| <= ${worst.toExponential(2)}; ` +
      `weights relErr ${wErr.toExponential(2)}; ` +
      `a constant rate moves the losses by up to ${apart.toFixed(3)}`,
  );
});

/** Resumes `run` from its checkpoint after `edit` changed it (checksums rewritten). */
function editCheckpoint(run: string, edit: (params: Map<string, { shape: number[]; data: Float32Array }>) => void) {
  const file = path.join(run, 'checkpoint.safetensors');
  const ck = loadCheckpoint(file);
  const params = new Map(ck.params);
  edit(params);
  saveCheckpoint(file, { ...ck, params });
  return { ...ck, params };
}

function poison(params: Map<string, { shape: number[]; data: Float32Array }>, key: string): void {
  const t = params.get(key)!;
  const data = Float32Array.from(t.data);
  data[0] = NaN;
  params.set(key, { shape: t.shape, data });
}

const iterations = (o: F32Map) => {
  const [hi, lo] = o.get('iterations')!.data;
  return hi * 2 ** 24 + lo;
};

test('onnxruntime runs report non-finite micro-batches: logged, counted, weights and Adam kept', async () => {
  // WaveNet with a NaN in a weight every output reads (the last tensor: its output head): each
  // micro-batch of the step is non-finite; the trainer tries 4, logs each and reports the step
  // skipped, and nothing reaches the weights or Adam. (A NaN in the carried history no longer does
  // this: crops start from empty state, and reset rows are new zeros.)
  const wn = path.join(tempDir(), 'wavenet');
  const wnOpts = runOpts(wn, {
    model: modelPreset('wavenet-tiny'),
    engine: 'onnxruntime',
    steps: 6,
    checkpointEvery: 3,
  });
  await train({ ...wnOpts, stopAfter: 3 });
  const before = editCheckpoint(wn, (p) => poison(p, [...p.keys()].filter((k) => !k.startsWith('state/')).at(-1)!));
  const log: string[] = [];
  const r = await train({ ...wnOpts, stopAfter: 1, onLog: (l) => log.push(l) });
  assert.equal(r.step, 4);
  assert.equal(r.skippedSteps, 4, log.join('\n'));
  assert.ok(
    log.some((l) =>
      /^step 3: non-finite loss or gradient \(loss NaN\); step skipped, weights untouched \(1 so far\)/.test(l),
    ),
    log.join('\n'),
  );
  const after = loadCheckpoint(path.join(wn, 'checkpoint.safetensors'));
  assert.equal(iterations(after.optimizer), iterations(before.optimizer), 'no update for step 4');
  assert.equal((after.state as { skippedSteps: number }).skippedSteps, 4, 'the checkpoint counts the skips');
  assert.equal(trainLines(wn).at(-1)!.skipped, true);

  // A transformer whose weights hold a NaN: every micro-batch of the step is non-finite (the trainer
  // tries 4); the step is reported skipped and nothing reaches the weights or Adam's moments.
  const ct = path.join(tempDir(), 'ct');
  const ctOpts = runOpts(ct, { engine: 'onnxruntime', steps: 6, checkpointEvery: 3 });
  await train({ ...ctOpts, stopAfter: 3 });
  const poisoned = editCheckpoint(ct, (p) => poison(p, 'ln_f.gamma'));
  const r2 = await train({ ...ctOpts, stopAfter: 1 });
  assert.equal(r2.step, 4);
  assert.equal(r2.skippedSteps, 4, 'four micro-batches tried, all skipped');
  const last = trainLines(ct).at(-1)!;
  assert.equal(last.step, 4);
  assert.equal(last.skipped, true);
  const ck = loadCheckpoint(path.join(ct, 'checkpoint.safetensors'));
  for (const [k, v] of poisoned.params)
    if (!k.startsWith('state/')) assert.ok(bytes(ck.params.get(k)!.data).equals(bytes(v.data)), `${k} kept`);
  assertSameTensors(ck.optimizer, poisoned.optimizer, 'Adam state after the skipped step');
});

// Found while writing the tests above (both engines): a reset row was cleared by multiplying its
// carried state by 0 (layers.ts clearRows, the training graph's `keep`), and 0 x NaN is NaN, so a row
// whose memories went non-finite kept poisoning the loss after it reached a new file (ct-tiny stayed
// NaN for 6 steps of full resets, each skipped). Now reset rows are new zeros on both engines.
for (const engine of ['onnxruntime', 'tfjs'] as const) {
  test(`${engine}: a reset row starts from empty state even when its carried state is non-finite`, async () => {
    const cfg = modelPreset('ct-tiny');
    const e = await open(engine, cfg, { lr: 1e-3, clip: 0.1, seed: 1 });
    const fresh = await open(engine, cfg, { lr: 1e-3, clip: 0.1, seed: 1 });
    try {
      await e.step(syntheticBatch(cfg, B, 0));
      await fresh.step(syntheticBatch(cfg, B, 0));
      const poisoned = e.exportState();
      poisoned.model.tensors[0].data[0] = NaN;
      e.importState(poisoned);
      // syntheticBatch(.., 0) resets every row: the step must equal the same step after clean state.
      const r = await e.step(syntheticBatch(cfg, B, 0));
      const want = await fresh.step(syntheticBatch(cfg, B, 0));
      assert.ok(!r.skipped, `the reset step is finite (loss ${r.loss})`);
      assert.equal(r.loss, want.loss);
    } finally {
      await e.dispose();
      await fresh.dispose();
    }
  });
}
