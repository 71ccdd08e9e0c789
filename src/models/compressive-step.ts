import type { Ops, Tensor } from '../engine/ops.js';
import type { TransformerConfig } from './config.js';
import { layerNorm, linear, param, type Params, relativeEncodingsFrom } from './layers.js';

/**
 * Sample-by-sample Compressive Transformer / Transformer-XL for generation (docs/onnx.md).
 * Within a segment, position i attends to exactly what segment mode shows it: [compressed memory;
 * memory; segment positions 0..i]. Memory keys and values are computed once per segment
 * (`memoryKeys`), the segment's own keys and values accumulate one slot per step, and the memory
 * roll after n steps is `updateMemory` of segment mode, fed the layer inputs the steps produced.
 */
export interface StepCache<T extends Tensor = Tensor> {
  /** per layer [B * H, n_cm + n_m, dh]: keys/values of [compressed memory; memory] */
  memK: readonly T[];
  memV: readonly T[];
  /** per layer [B * H, n, dh]: keys/values of the segment so far; slots >= i are empty (masked). Heads
   * are folded into the leading axis so a step reads the caches as they are (a reshape of a graph
   * input costs onnxruntime a copy). */
  segK: readonly T[];
  segV: readonly T[];
}

export interface StepOutput<T extends Tensor = Tensor> {
  /** [B, 256] */
  logits: T;
  /** per layer [B, d]: the layer's input at this position (what memory will hold) */
  h: T[];
  /** per layer [B, H, dh]: this position's key and value, for slot i of the segment cache */
  k: T[];
  v: T[];
}

function splitHeads<T extends Tensor>(ops: Ops<T>, x: T, B: number, len: number, H: number, dh: number): T {
  return ops.transpose(ops.reshape(x, [B, len, H, dh]), [0, 2, 1, 3]);
}

/** Keys and values [B * H, M, dh] of layer i over [compressed memory; memory], as attention sees them. */
export function memoryKeys<T extends Tensor>(
  ops: Ops<T>,
  cfg: TransformerConfig,
  p: Params<T>,
  i: number,
  cmem: T,
  mem: T,
): { k: T; v: T } {
  const { heads: H, dHead: dh, memory: nm, compressedMemory: ncm } = cfg;
  const parts = [...(ncm > 0 ? [cmem] : []), ...(nm > 0 ? [mem] : [])];
  if (parts.length === 0) throw new Error('step mode needs memory (n_m + n_cm > 0)');
  const context = parts.length > 1 ? ops.concat(parts, 1) : parts[0];
  const [B, M] = context.shape;
  const layer = (s: string) => param(p, `layers.${i}.${s}`);
  const ln = layerNorm(ops, context, layer('ln1.gamma'), layer('ln1.beta'));
  const fold = (w: T) => ops.reshape(splitHeads(ops, linear(ops, ln, w), B, M, H, dh), [B * H, M, dh]);
  return { k: fold(layer('attn.wk')), v: fold(layer('attn.wv')) };
}

/**
 * One position for B rows. `tokens` [B, 256] one-hot; `start` [1] = n - 1 - i, where this query's
 * window begins in the extended relative-position table; `mask` [B, 1, 1, K + 1] additive over
 * [memory keys; segment slots; this position]. Slot i and later of the segment caches are still
 * empty (masked): this position's own key and value enter as a separate last column, so the large
 * caches are only read, never copied, by a step.
 */
export function ctStepCore<T extends Tensor>(
  ops: Ops<T>,
  cfg: TransformerConfig,
  p: Params<T>,
  tokens: T,
  start: T,
  mask: T,
  cache: StepCache<T>,
): StepOutput<T> {
  const { dModel: d, heads: H, dHead: dh, segment: n, memory: nm, compressedMemory: ncm } = cfg;
  const B = tokens.shape[0];
  const M = ncm + nm;
  const K = M + n;
  // Distances K-1 down to -(n-1): position i's keys (distance ncm+nm+i-j) are rows n-1-i .. n-2-i+K;
  // its own key, at distance 0, is row K-1.
  const table = ops.constant(relativeEncodingsFrom(K - 1, K + n - 1, d), [K + n - 1, d]);
  let x = ops.matMul(tokens, param(p, 'embed.weight')); // [B, d]
  const out: StepOutput<T> = { logits: x, h: [], k: [], v: [] };
  const flat = (t: T, len: number) => {
    if (t.shape.join() !== [B * H, len, dh].join())
      throw new Error(`step cache of shape [${t.shape}], expected [${[B * H, len, dh]}]`);
    return t;
  };
  for (let i = 0; i < cfg.layers; i++) {
    const layer = (s: string) => param(p, `layers.${i}.${s}`);
    const h = x;
    out.h.push(h);
    const ln = layerNorm(ops, h, layer('ln1.gamma'), layer('ln1.beta'));
    const q = ops.reshape(linear(ops, ln, layer('attn.wq')), [B, H, 1, dh]);
    const k = ops.reshape(linear(ops, ln, layer('attn.wk')), [B * H, 1, dh]);
    const v = ops.reshape(linear(ops, ln, layer('attn.wv')), [B * H, 1, dh]);
    out.k.push(ops.reshape(k, [B, H, dh]));
    out.v.push(ops.reshape(v, [B, H, dh]));

    const qu = ops.reshape(ops.add(q, ops.reshape(layer('attn.u'), [1, H, 1, dh])), [B * H, 1, dh]);
    const ac = ops.concat(
      [
        ops.matMul(qu, flat(cache.memK[i], M), false, true),
        ops.matMul(qu, flat(cache.segK[i], n), false, true),
        ops.matMul(qu, k, false, true),
      ],
      2,
    ); // [B*H, 1, K+1]
    const r = ops.transpose(ops.reshape(ops.matMul(table, layer('attn.wr')), [K + n - 1, H, dh]), [1, 0, 2]); // [H, K+n-1, dh]
    const qv = ops.reshape(ops.transpose(ops.add(q, ops.reshape(layer('attn.v'), [1, H, 1, dh])), [1, 0, 2, 3]), [
      H,
      B,
      dh,
    ]);
    const bdAll = ops.transpose(ops.matMul(qv, r, false, true), [1, 0, 2]); // [B, H, K+n-1]
    const bd = ops.concat([ops.sliceAt(bdAll, 2, start, K), ops.slice(bdAll, [0, 0, K - 1], [B, H, 1])], 2); // [B, H, K+1]
    const scores = ops.add(
      ops.reshape(ops.scale(ops.add(ac, ops.reshape(bd, [B * H, 1, K + 1])), 1 / Math.sqrt(dh)), [B, H, 1, K + 1]),
      mask,
    );
    const probs = ops.reshape(ops.softmax(scores), [B * H, 1, K + 1]);
    const part = (from: number, len: number) => ops.slice(probs, [0, 0, from], [B * H, 1, len]);
    const ctx = ops.add(
      ops.add(ops.matMul(part(0, M), flat(cache.memV[i], M)), ops.matMul(part(M, n), flat(cache.segV[i], n))),
      ops.mul(part(K, 1), v),
    ); // [B*H, 1, dh]
    x = ops.add(h, linear(ops, ops.reshape(ctx, [B, H * dh]), layer('attn.wo')));
    const ff = linear(
      ops,
      ops.relu(linear(ops, layerNorm(ops, x, layer('ln2.gamma'), layer('ln2.beta')), layer('ff.w1'), layer('ff.b1'))),
      layer('ff.w2'),
      layer('ff.b2'),
    );
    x = ops.add(x, ff);
  }
  out.logits = linear(
    ops,
    layerNorm(ops, x, param(p, 'ln_f.gamma'), param(p, 'ln_f.beta')),
    param(p, 'head.weight'),
    param(p, 'head.bias'),
  );
  return out;
}

/** Host-side feeds of position i: the table offset and the additive mask over [memory; segment slots; itself]. */
export function stepFeeds(
  cfg: TransformerConfig,
  B: number,
  i: number,
  memValid: Int32Array,
  cmemValid: Int32Array,
  memoryKeyValid: (j: number, mv: number, cv: number) => boolean,
): { start: Float32Array; mask: Float32Array } {
  const { segment: n, memory: nm, compressedMemory: ncm } = cfg;
  const M = ncm + nm;
  const K = M + n;
  const mask = new Float32Array(B * (K + 1));
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < K; j++) {
      // Segment slots before i hold this segment's earlier positions; slot i onwards are empty.
      const ok = j < M ? memoryKeyValid(j, memValid[b], cmemValid[b]) : j - M < i;
      if (!ok) mask[b * (K + 1) + j] = -1e9;
    }
  }
  return { start: Float32Array.of(n - 1 - i), mask };
}
