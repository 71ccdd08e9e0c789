/**
 * Gradients of the onnxruntime training graph — the family's training loss traced
 * (models/training-graph.ts), differentiated by our reverse pass (engine/onnx-grad.ts), run on
 * onnxruntime — against two independent references, for every family, every compression function
 * the graph takes and both auxiliary losses:
 *
 * 1. tfjs autodiff on the same model code, as the tfjs trainer runs it (SequenceModel under
 *    tf.variableGrads), same weights, batches, resets and dropout masks, over three steps with the
 *    carried state each engine produced itself: step 0 from empty memories, step 1 with full
 *    memories (the aux loss counts both rows), step 2 with compressed memories attended and row 1
 *    reset (the aux loss counts one row). Every parameter's gradient within 1e-4 by `relErr`
 *    (max |ort - tfjs| / max |tfjs| over the tensor), and loss, NLL, aux and carried state too.
 * 2. Central finite differences of the same training graph evaluated in float64 on the host
 *    (test/f64-ops.ts), at a few weight coordinates per config, on step 2's inputs.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Rng } from '../src/data/rng.js';
import { initBackend } from '../src/engine/backend.js';
import type { ModelConfig } from '../src/models/registry.js';
import { F64, F64Ops } from './f64-ops.js';
import {
  configOf,
  maxAbs,
  OrtGradientGraph,
  relErr,
  syntheticBatch,
  testWeights,
  TfGradients,
} from './ort-train-helpers.js';

before(async () => {
  await initBackend('cpu');
});

const CASES: { label: string; preset: string; over?: Record<string, unknown> }[] = [
  { label: 'CT max-pool', preset: 'ct-tiny', over: { compression: 'max-pool', auxLoss: 'none' } },
  { label: 'CT mean-pool', preset: 'ct-tiny', over: { compression: 'mean-pool', auxLoss: 'none' } },
  { label: 'CT conv + attention aux', preset: 'ct-tiny', over: { compression: 'conv', auxLoss: 'attention' } },
  { label: 'CT conv + autoencode aux', preset: 'ct-tiny', over: { compression: 'conv', auxLoss: 'autoencode' } },
  {
    label: 'CT dilated-conv + attention aux',
    preset: 'ct-tiny',
    over: { compression: 'dilated-conv', auxLoss: 'attention' },
  },
  {
    label: 'CT dilated-conv + autoencode aux',
    preset: 'ct-tiny',
    over: { compression: 'dilated-conv', auxLoss: 'autoencode' },
  },
  {
    label: 'CT conv + attention aux, dropout 0.1 (same masks)',
    preset: 'ct-tiny',
    over: { compression: 'conv', auxLoss: 'attention', dropout: 0.1 },
  },
  // Traceable since most-used selection became the `topRows` primitive; skipped where the graph refuses it.
  { label: 'CT most-used', preset: 'ct-tiny', over: { compression: 'most-used', auxLoss: 'none' } },
  { label: 'Transformer-XL', preset: 'txl-tiny' },
  { label: 'WaveNet', preset: 'wavenet-tiny' },
];

const B = 2;
const STEPS = 3;
/** the parity bound of the issue: per tensor, relErr <= 1e-4 */
const TOL = 1e-4;

for (const c of CASES) {
  const title = `${c.label}: onnxruntime training-graph gradients equal tfjs autodiff and float64 finite differences`;
  test(title, async (t) => {
    const cfg = configOf(c.preset, c.over);
    const weights = testWeights(cfg);
    const names = [...weights.keys()];
    let ort: OrtGradientGraph;
    try {
      ort = await OrtGradientGraph.open(cfg, B, weights);
    } catch (e) {
      if (/most-used/.test(String((e as Error).message))) return t.skip(`refused: ${(e as Error).message}`);
      throw e;
    }
    const ref = new TfGradients(cfg, names, weights, B);
    // The tfjs trainer draws dropout masks inside the forward; the ORT graph's feeds draw them on
    // the host in the same order: two generators with one seed give both the same masks.
    const rngTf = new Rng(11);
    const rngOrt = new Rng(11);
    let state = ort.zeroState();
    const worst = { grad: 0, where: '', loss: 0, state: 0 };
    const compressed = cfg.kind === 'transformer' && cfg.compressedMemory > 0;
    const withAux = compressed && cfg.auxLoss !== 'none';
    let lastFeeds: ReturnType<typeof ort.graph.feeds> | null = null;
    let lastState: Float32Array[] = [];
    let lastGrads: Map<string, Float32Array | null> = new Map();
    let lastLoss = NaN;
    try {
      for (let k = 0; k < STEPS; k++) {
        const batch = syntheticBatch(cfg, B, k);
        const feeds = ort.graph.feeds(batch, rngOrt);
        const a = await ort.run(feeds, weights, state);
        const b = ref.step(batch, rngTf);
        // Step 0 has no old memories; from step 1 the aux loss counts rows with all-valid old memories.
        if (withAux) {
          if (k === 0) assert.equal(b.aux, null, 'no aux loss before memories fill');
          else assert.ok(b.aux !== null && b.aux > 0, `step ${k}: the aux loss is active (tfjs aux ${b.aux})`);
          if (k === 2) assert.equal(feeds.auxInvCount.data[0], 1, 'step 2: one row counted');
          if (k === 1) assert.equal(feeds.auxInvCount.data[0], 0.5, 'step 1: both rows counted');
        }
        if (compressed && k === 2) {
          // Compressed memory holds real history of row 0 now: some of its keys are unmasked.
          const K = cfg.compressedMemory + cfg.memory + cfg.segment;
          const row0 = feeds.mask.data.subarray(0, K);
          assert.ok(
            row0[cfg.compressedMemory - 1] === 0 && row0[0] !== 0,
            'step 2: row 0 attends its newest compressed slots',
          );
        }
        const lossErr = Math.abs(a.loss - b.loss) / Math.abs(b.loss);
        worst.loss = Math.max(worst.loss, lossErr);
        assert.ok(lossErr <= 1e-5, `step ${k}: loss ${a.loss} vs tfjs ${b.loss}`);
        assert.ok(Math.abs(a.nll - b.nll) <= 1e-5 * b.nll, `step ${k}: nll ${a.nll} vs ${b.nll}`);
        if (b.aux !== null) {
          assert.ok(a.aux !== null);
          assert.ok(Math.abs(a.aux! - b.aux) <= 1e-4 * b.aux, `step ${k}: aux ${a.aux} vs ${b.aux}`);
        } else if (a.aux !== null) {
          assert.equal(a.aux, 0, `step ${k}: no counted rows, the graph's aux is 0`);
        }
        for (const name of names) {
          const ga = a.grads.get(name);
          const gb = b.grads.get(name);
          if (!gb) {
            // tfjs has no gradient (compression weights before the aux loss counts a row): the
            // graph's must be exactly zero (its aux term is multiplied by a zero count).
            assert.ok(!ga || maxAbs(ga) === 0, `step ${k}: ${name}: tfjs has no gradient, ours is ${ga && maxAbs(ga)}`);
            continue;
          }
          assert.ok(ga, `step ${k}: ${name}: tfjs has a gradient, the graph none`);
          const e = relErr(ga, gb);
          if (e > worst.grad) [worst.grad, worst.where] = [e, `step ${k} ${name}`];
          assert.ok(e <= TOL, `step ${k}: ${name}: relErr ${e.toExponential(2)} (max |g| ${maxAbs(gb)})`);
        }
        if (k > 0) {
          // Once memories are full every parameter has a gradient, except WaveNet's last residual
          // 1x1, whose output nothing reads (the head reads the skips).
          const last = cfg.kind === 'wavenet' ? cfg.stacks * cfg.layersPerStack - 1 : -1;
          const unused = last >= 0 ? [`layers.${last}.res.w`, `layers.${last}.res.b`] : [];
          assert.deepEqual(
            names.filter((n) => !b.grads.get(n)),
            unused,
            `step ${k}: the parameters without a gradient on tfjs`,
          );
        }
        b.state.forEach((s, i) => {
          const e = relErr(a.state[i], s);
          worst.state = Math.max(worst.state, e);
          assert.ok(e <= 1e-5, `step ${k}: carried state ${i}: relErr ${e}`);
        });
        lastFeeds = feeds;
        lastState = state;
        lastGrads = a.grads;
        lastLoss = a.loss;
        state = a.state;
      }

      // Finite differences on step 2's inputs (full and compressed memories, aux active), in float64.
      const fd = finiteDifferences(cfg, ort.graph, weights, lastFeeds!, lastState, lastGrads, lastLoss, 77);
      t.diagnostic(
        `worst gradient relErr vs tfjs ${worst.grad.toExponential(2)} (${worst.where}); ` +
          `loss ${worst.loss.toExponential(2)}; ` +
          `state ${worst.state.toExponential(2)}; finite differences: ${fd.checked} coordinates, worst ` +
          `${fd.worst.toExponential(2)} of the tensor's largest gradient (${fd.where}), ` +
          `float64 loss vs ort ${fd.lossErr.toExponential(2)}`,
      );
    } finally {
      ref.dispose();
      await ort.dispose();
    }
  });
}

/**
 * Central differences (f(w + h e_j) - f(w - h e_j)) / 2h of the training loss evaluated in float64
 * with every stopGradient frozen at its value at w (the function a reverse pass differentiates),
 * against the onnxruntime gradient at the same coordinate. Coordinates: every compression /
 * decompression tensor (trained by the aux loss alone), a transformer's first-layer query weights
 * and norm gain, and four other tensors picked by a seeded generator; in each, the entry with the
 * largest gradient and one at random.
 *
 * Tolerance: with h = 1e-5 in float64 the difference quotient's own error is ~h^2 |f'''| + 1e-16 |f| / h,
 * about 1e-9 here, so the comparison measures the float32 gradient: its rounding is ~1e-6 of the
 * tensor's largest entry. We allow 1e-4 of that entry (the parity bound) plus 1e-7 absolute.
 */
function finiteDifferences(
  cfg: ModelConfig,
  graph: OrtGradientGraph['graph'],
  weights: Map<string, { shape: number[]; data: Float32Array }>,
  feeds: Record<string, { data: Float32Array; shape: readonly number[] }>,
  state: Float32Array[],
  grads: Map<string, Float32Array | null>,
  ortLoss: number,
  seed: number,
) {
  const f64 = new F64Ops();
  f64.feeds = new Map(Object.entries(feeds));
  state.forEach((s, i) => f64.feeds.set(`s.${i}`, { data: s }));
  const base = new Map([...weights].map(([k, v]) => [k, f64.from(v.data, v.shape)]));
  const lossAt = (p: Map<string, F64>) => {
    f64.begin();
    return graph.build(f64, p).loss.data[0];
  };
  f64.frozen = 'record';
  const f0 = lossAt(base);
  f64.frozen = 'replay';
  const rng = new Rng(seed);
  const names = [...weights.keys()];
  const comp = names.filter((k) => /compress/.test(k));
  const others = names.filter((k) => !/compress/.test(k));
  // The first layer's query weights and norm gain feed the attention aux loss only through frozen
  // copies (stopGradient): their difference quotients hold the reverse pass to that exclusion.
  const picked = [...comp, ...['layers.0.attn.wq', 'layers.0.ln1.gamma'].filter((k) => names.includes(k))];
  const fixed = picked.length;
  while (picked.length < fixed + 4) {
    const k = others[Math.floor(rng.nextFloat() * others.length)];
    if (!picked.includes(k)) picked.push(k);
  }
  const h = 1e-5;
  let worst = 0;
  let where = '';
  let checked = 0;
  for (const name of picked) {
    const g = grads.get(name) ?? new Float32Array(weights.get(name)!.data.length);
    const scale = maxAbs(g);
    let top = 0;
    for (let j = 1; j < g.length; j++) if (Math.abs(g[j]) > Math.abs(g[top])) top = j;
    for (const j of [top, Math.floor(rng.nextFloat() * g.length)]) {
      const at = (delta: number) => {
        const w = base.get(name)!;
        const d = Float64Array.from(w.data);
        d[j] += delta;
        return lossAt(new Map(base).set(name, new F64(w.shape, d)));
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      const err = Math.abs(fd - g[j]);
      const rel = err / Math.max(scale, 1e-30);
      if (rel > worst) [worst, where] = [rel, `${name}[${j}]`];
      assert.ok(
        err <= TOL * scale + 1e-7,
        `${cfg.kind} finite difference ${name}[${j}]: ${fd} vs onnxruntime ${g[j]} (tensor max ${scale})`,
      );
      checked++;
    }
  }
  // The float64 loss itself against onnxruntime's float32 one on the same inputs.
  const lossErr = Math.abs(f0 - ortLoss) / Math.abs(f0);
  assert.ok(lossErr <= 1e-5, `float64 loss ${f0} vs onnxruntime ${ortLoss}`);
  return { worst, where, checked, lossErr };
}
