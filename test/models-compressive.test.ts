import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { ctForward, type CtState, initialState } from '../src/models/compressive.js';
import { nllLoss } from '../src/models/loss.js';
import type { TransformerConfig } from '../src/models/config.js';
import { codesTensor } from '../src/models/layers.js';
import { NUM_CODES } from '../src/util/codes.js';
import { codes, constParams, maxAbsDiff, ops, paramArrays, tinyConfig } from './model-helpers.js';

type Run = { logits: Float32Array[]; states: CtState<tf.Tensor>[]; probs: Float32Array[][] };

/** Run consecutive segments (each [B * n] codes) from a fresh state; keep logits, states and probs. */
function runSegments(
  cfg: TransformerConfig,
  arrays: ReturnType<typeof paramArrays>,
  segs: Int32Array[],
  B: number,
  resets: (number[] | null)[] = [],
): Run {
  const p = constParams(arrays);
  let state = initialState(ops, cfg, B);
  const run: Run = { logits: [], states: [], probs: [] };
  segs.forEach((seg, k) => {
    const out = ctForward(ops, cfg, p, codesTensor(ops, seg, NUM_CODES), resets[k] ?? null, state, { keepProbs: true });
    run.logits.push(out.logits.dataSync() as Float32Array);
    run.probs.push(out.probs!.map((t) => t.dataSync() as Float32Array));
    state = out.state;
    run.states.push(state);
  });
  return run;
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`[${backend}] causality: a change at sample t never changes an earlier logit, across segments`, async () => {
    await initBackend(backend);
    const cfg = tinyConfig();
    const arrays = paramArrays(cfg);
    const n = cfg.segment;
    const base = codes(4 * n);
    const segs = (c: Int32Array) => [0, 1, 2, 3].map((k) => c.subarray(k * n, (k + 1) * n));
    const a = runSegments(cfg, arrays, segs(base), 1);
    for (const t of [n + 5, 3 * n]) {
      const changed = Int32Array.from(base);
      changed[t] = (changed[t] + 77) % 256;
      const b = runSegments(cfg, arrays, segs(changed), 1);
      const flatA = a.logits.flatMap((l) => [...l]);
      const flatB = b.logits.flatMap((l) => [...l]);
      assert.deepEqual(flatB.slice(0, t * 256), flatA.slice(0, t * 256), `logits before ${t} unchanged`);
      assert.ok(
        maxAbsDiff(flatB.slice(t * 256, (t + 1) * 256), flatA.slice(t * 256, (t + 1) * 256)) > 1e-4,
        'the changed input moves its own prediction',
      );
      // A later segment sees the change through memory (or compressed memory).
      assert.ok(maxAbsDiff(flatB.slice(-n * 256), flatA.slice(-n * 256)) > 0 || t >= 3 * n);
    }
  });

  test(`[${backend}] memory and compressed memory follow Algorithm 1 for every compression function`, async () => {
    await initBackend(backend);
    for (const compression of ['max-pool', 'mean-pool', 'conv', 'dilated-conv', 'most-used'] as const) {
      const hasParams = compression === 'conv' || compression === 'dilated-conv';
      const cfg = tinyConfig({ compression, auxLoss: hasParams ? 'attention' : 'none' });
      const arrays = paramArrays(cfg, 3);
      const { segment: n, memory: nm, compressedMemory: ncm, compressionRate: c, dModel: d } = cfg;
      assert.equal(nm, n);
      const B = 2;
      const segs = [0, 1, 2].map((k) => codes(B * n, 11 + k));
      const r = runSegments(cfg, arrays, segs, B);
      const E = arrays.get('embed.weight')!.data;
      // Layer 0's input is the embedding: its memory after segment k is E[codes of segment k].
      const emb = (seg: Int32Array, b: number) =>
        Array.from({ length: n }, (_, i) => Array.from(E.subarray(seg[b * n + i] * d, seg[b * n + i] * d + d)));
      const W = arrays.get('layers.0.compress.w')?.data;
      const bias = arrays.get('layers.0.compress.b')?.data;
      const usageOf = (probs: Float32Array, b: number) => {
        const H = cfg.heads;
        const K = ncm + nm + n;
        return Array.from({ length: n }, (_, j) => {
          let s = 0;
          for (let h = 0; h < H; h++) for (let i = 0; i < n; i++) s += probs[((b * H + h) * n + i) * K + ncm + j];
          return s / (H * n);
        });
      };
      const f = (old: number[][], usage: number[]): number[][] => {
        const m = n / c;
        const out: number[][] = [];
        for (let t = 0; t < m; t++) {
          const win = old.slice(t * c, (t + 1) * c);
          if (compression === 'max-pool') out.push(win[0].map((_, k) => Math.max(...win.map((r) => r[k]))));
          else if (compression === 'mean-pool') out.push(win[0].map((_, k) => win.reduce((a, r) => a + r[k], 0) / c));
          else if (compression === 'most-used') {
            const keep = usage
              .map((u, j) => [u, j])
              .sort((x, y) => y[0] - x[0] || y[1] - x[1])
              .slice(0, m)
              .map((x) => x[1])
              .sort((x, y) => x - y);
            return keep.map((j) => old[j]);
          } else {
            const taps =
              compression === 'conv'
                ? win
                : Array.from({ length: c }, (_, j) => old[t * c - c + 2 * j + 1] ?? new Array(d).fill(0));
            const flat = taps.flat();
            out.push(Array.from({ length: d }, (_, o) => flat.reduce((a, x, k) => a + x * W![k * d + o], bias![o])));
          }
        }
        return out;
      };
      for (let b = 0; b < B; b++) {
        const mem1 = r.states[0].mem[0].dataSync();
        assert.ok(
          maxAbsDiff(mem1.subarray(b * nm * d, (b + 1) * nm * d), emb(segs[0], b).flat()) < 1e-6,
          `${compression}: memory holds segment 1`,
        );
        const cm = r.states[2].cmem[0].dataSync().subarray(b * ncm * d, (b + 1) * ncm * d);
        // Segment 2 compressed segment 1's memories (usage from segment 2's attention),
        // segment 3 compressed segment 2's.
        const want = [
          ...f(emb(segs[0], b), usageOf(r.probs[1][0], b)),
          ...f(emb(segs[1], b), usageOf(r.probs[2][0], b)),
        ].flat();
        assert.ok(
          maxAbsDiff(cm, want) < 1e-4,
          `${compression} row ${b}: compressed memory = [f(seg1); f(seg2)], diff ${maxAbsDiff(cm, want)}`,
        );
      }
      assert.deepEqual([...r.states[0].memValid], [nm, nm]);
      assert.deepEqual([...r.states[0].cmemValid], [0, 0], 'memories of a fresh state are not history');
      assert.deepEqual([...r.states[1].cmemValid], [n / c, n / c]);
      assert.deepEqual([...r.states[2].cmemValid], [Math.min(ncm, (2 * n) / c), Math.min(ncm, (2 * n) / c)]);
    }
  });

  test(`[${backend}] a reset row matches a fresh model on that file; the other row keeps its memory`, async () => {
    await initBackend(backend);
    const cfg = tinyConfig();
    const arrays = paramArrays(cfg, 5);
    const n = cfg.segment;
    const s1 = codes(2 * n, 1);
    const s2 = codes(2 * n, 2);
    const both = runSegments(cfg, arrays, [s1, s2], 2, [null, [1, 0]]);
    const fresh0 = runSegments(cfg, arrays, [s2.subarray(0, n)], 1);
    const fresh1 = runSegments(cfg, arrays, [s2.subarray(n)], 1);
    assert.ok(maxAbsDiff(both.logits[1].subarray(0, n * 256), fresh0.logits[0]) < 1e-5);
    assert.ok(maxAbsDiff(both.logits[1].subarray(n * 256), fresh1.logits[0]) > 1e-3, 'row 1 still uses its memory');
    assert.deepEqual([...both.states[1].memValid], [n, cfg.memory]);
  });

  test(
    `[${backend}] Transformer-XL is the same model with n_cm = 0: ` + 'identical until compressed memory holds history',
    async () => {
      await initBackend(backend);
      const ct = tinyConfig();
      const txl = tinyConfig({ compressedMemory: 0, auxLoss: 'none' });
      const arrays = paramArrays(ct, 9);
      const txlArrays = new Map([...arrays].filter(([k]) => !k.includes('compress')));
      const n = ct.segment;
      const segs = [0, 1, 2].map((k) => codes(n, 20 + k));
      const a = runSegments(ct, arrays, segs, 1);
      const b = runSegments(txl, txlArrays, segs, 1);
      assert.ok(maxAbsDiff(a.logits[0], b.logits[0]) < 1e-5);
      assert.ok(maxAbsDiff(a.logits[1], b.logits[1]) < 1e-5);
      assert.ok(maxAbsDiff(a.logits[2], b.logits[2]) > 1e-4, 'segment 3 attends to compressed memory');
      assert.equal(b.states[2].cmem[0].shape[1], 0);
      // No code path depends on the compression settings once n_cm = 0: bit for bit the same model.
      const other = tinyConfig({ compressedMemory: 0, auxLoss: 'none', compression: 'most-used', compressionRate: 2 });
      const c2 = runSegments(other, txlArrays, segs, 1);
      for (let k = 0; k < 3; k++) assert.deepEqual(c2.logits[k], b.logits[k]);
    },
  );

  test(`[${backend}] stop-gradients: aux trains only compression, NLL never trains compression`, async () => {
    await initBackend(backend);
    for (const auxLoss of ['attention', 'autoencode'] as const) {
      const cfg = tinyConfig({ auxLoss });
      const arrays = paramArrays(cfg, 4);
      const n = cfg.segment;
      const vars = new Map(
        [...arrays].map(([k, v]) => [
          k,
          tf.variable(tf.tensor(v.data, v.shape), true, `sg-${backend}-${auxLoss}-${k}`),
        ]),
      );
      const p = vars as unknown as Map<string, tf.Tensor>;
      const s1 = ctForward(
        ops,
        cfg,
        p,
        codesTensor(ops, codes(2 * n, 1), NUM_CODES),
        null,
        initialState(ops, cfg, 2),
      ).state;
      const seg = codes(2 * n, 2);
      const targets = codes(2 * n, 3);
      const mask = new Float32Array(2 * n).fill(1);
      const grads = (which: 'aux' | 'nll') =>
        tf.variableGrads(() => {
          const out = ctForward(ops, cfg, p, codesTensor(ops, seg, NUM_CODES), null, s1);
          if (which === 'aux') {
            assert.ok(out.aux, 'aux loss is active once old memories are history');
            return out.aux as tf.Scalar;
          }
          return nllLoss(ops, out.logits, targets, mask) as tf.Scalar;
        }, [...vars.values()]).grads;
      const gAux = grads('aux');
      const gNll = grads('nll');
      const norm = (g?: tf.Tensor) => (g ? Math.sqrt(tf.sum(tf.square(g)).dataSync()[0]) : 0);
      for (const [name, v] of vars) {
        const isComp = name.includes('compress');
        if (isComp) {
          assert.equal(norm(gNll[v.name]), 0, `NLL gradient on ${name}`);
          if (name.startsWith('layers.') && (name.includes('.compress.') || auxLoss === 'autoencode'))
            assert.ok(norm(gAux[v.name]) > 0, `aux gradient reaches ${name}`);
        } else {
          assert.equal(norm(gAux[v.name]), 0, `aux gradient on ${name}`);
        }
      }
      assert.ok(norm(gNll[vars.get('layers.0.attn.wq')!.name]) > 0);
      tf.dispose([...vars.values()]);
    }
  });

  test(`[${backend}] gradients of NLL + aux match central finite differences`, async () => {
    await initBackend(backend);
    const cfg = tinyConfig({ layers: 1 });
    const arrays = paramArrays(cfg, 6);
    const n = cfg.segment;
    const s1codes = codes(n, 1);
    const seg = codes(n, 2);
    const targets = codes(n, 3);
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 0 : 1));
    const vars = new Map(
      [...arrays].map(([k, v]) => [k, tf.variable(tf.tensor(v.data, v.shape), true, `fd-${backend}-${k}`)]),
    );
    const p = vars as unknown as Map<string, tf.Tensor>;
    // Memory is carried state without gradient: the finite differences hold it fixed too.
    const st = ctForward(ops, cfg, p, codesTensor(ops, s1codes, NUM_CODES), null, initialState(ops, cfg, 1)).state;
    // The stop-gradients make autodiff of NLL + aux equal d(NLL) on the main network and d(aux) on
    // the compression network: those are the two functions to difference.
    const loss = (arr: typeof arrays, which: 'nll' | 'aux') =>
      tf.tidy(() => {
        const out = ctForward(ops, cfg, constParams(arr), codesTensor(ops, seg, NUM_CODES), null, st);
        return (which === 'nll' ? nllLoss(ops, out.logits, targets, mask) : out.aux!).dataSync()[0];
      });
    const { grads } = tf.variableGrads(() => {
      const out = ctForward(ops, cfg, p, codesTensor(ops, seg, NUM_CODES), null, st);
      return tf.add(nllLoss(ops, out.logits, targets, mask), out.aux!) as tf.Scalar;
    }, [...vars.values()]);
    const eps = 1e-2;
    let checked = 0;
    for (const name of [
      'embed.weight',
      'layers.0.attn.wq',
      'layers.0.attn.wk',
      'layers.0.attn.wr',
      'layers.0.attn.u',
      'layers.0.attn.v',
      'layers.0.ln1.gamma',
      'layers.0.ff.w1',
      'layers.0.compress.w',
      'head.weight',
    ]) {
      const g = grads[vars.get(name)!.name].dataSync();
      // The coordinates with the largest gradients, where float32 finite differences are meaningful.
      const idx = Array.from(g.keys())
        .sort((x, y) => Math.abs(g[y]) - Math.abs(g[x]))
        .slice(0, 3);
      for (const i of idx) {
        const plus = new Map(arrays);
        const minus = new Map(arrays);
        const a = arrays.get(name)!;
        const up = Float32Array.from(a.data);
        const down = Float32Array.from(a.data);
        up[i] += eps;
        down[i] -= eps;
        plus.set(name, { shape: a.shape, data: up });
        minus.set(name, { shape: a.shape, data: down });
        const which = name.includes('compress') ? 'aux' : 'nll';
        const fd = (loss(plus, which) - loss(minus, which)) / (2 * eps);
        assert.ok(
          Math.abs(fd - g[i]) <= 2e-3 + 0.05 * Math.abs(g[i]),
          `${name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`,
        );
        checked++;
      }
    }
    assert.equal(checked, 30);
    tf.dispose([...vars.values()]);
  });
}

test('wasm and cpu give the same logits for the same weights', async () => {
  const cfg = tinyConfig();
  const arrays = paramArrays(cfg, 8);
  const segs = [0, 1, 2].map((k) => codes(2 * cfg.segment, 30 + k));
  await initBackend('wasm');
  const w = runSegments(cfg, arrays, segs, 2).logits;
  await initBackend('cpu');
  const c = runSegments(cfg, arrays, segs, 2).logits;
  for (let k = 0; k < 3; k++) assert.ok(maxAbsDiff(w[k], c[k]) < 1e-4, `segment ${k}: ${maxAbsDiff(w[k], c[k])}`);
});
