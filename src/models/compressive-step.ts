import type { Ops, Tensor } from '../engine/ops.js';
import type { TransformerConfig } from './config.js';
import { layerNorm, linear, param, type Params, relativeEncodingsFrom } from './layers.js';

/**
 * Sample-by-sample Compressive Transformer / Transformer-XL for generation (DESIGN.md section 7).
 * Within a segment, position i attends to exactly what segment mode shows it: [compressed memory;
 * memory; segment positions 0..i]. Memory keys and values are computed once per segment
 * (`memoryKeys`), the segment's own keys and values accumulate one slot per step, and the memory
 * roll after n steps is `updateMemory` of segment mode, fed the layer inputs the steps produced.
 */
export interface StepCache<T extends Tensor = Tensor> {
  /** per layer [B, H, n_cm + n_m, dh]: keys/values of [compressed memory; memory] */
  memK: readonly T[];
  memV: readonly T[];
  /** per layer [B, H, n, dh]: keys/values of the segment so far; slots >= i are zero */
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

/** Keys and values [B, H, M, dh] of layer i over [compressed memory; memory], as attention sees them. */
export function memoryKeys<T extends Tensor>(ops: Ops<T>, cfg: TransformerConfig, p: Params<T>, i: number, cmem: T, mem: T): { k: T; v: T } {
  const { heads: H, dHead: dh, memory: nm, compressedMemory: ncm } = cfg;
  const parts = [...(ncm > 0 ? [cmem] : []), ...(nm > 0 ? [mem] : [])];
  if (parts.length === 0) throw new Error('step mode needs memory (n_m + n_cm > 0)');
  const context = parts.length > 1 ? ops.concat(parts, 1) : parts[0];
  const [B, M] = context.shape;
  const L = (s: string) => param(p, `layers.${i}.${s}`);
  const ln = layerNorm(ops, context, L('ln1.gamma'), L('ln1.beta'));
  return { k: splitHeads(ops, linear(ops, ln, L('attn.wk')), B, M, H, dh), v: splitHeads(ops, linear(ops, ln, L('attn.wv')), B, M, H, dh) };
}

/**
 * One position for B rows. `tokens` [B, 256] one-hot; `slot` [1, 1, n, 1] one-hot of the position
 * i in its segment; `start` [1] = n - 1 - i, where this query's window begins in the extended
 * relative-position table; `mask` [B, 1, 1, K] additive over [memory keys; segment slots].
 */
export function ctStepCore<T extends Tensor>(ops: Ops<T>, cfg: TransformerConfig, p: Params<T>, tokens: T, slot: T, start: T, mask: T, cache: StepCache<T>): StepOutput<T> {
  const { dModel: d, heads: H, dHead: dh, segment: n, memory: nm, compressedMemory: ncm } = cfg;
  const B = tokens.shape[0];
  const K = ncm + nm + n;
  // Distances K-1 down to -(n-1): position i's keys (distance ncm+nm+i-j) are rows n-1-i .. n-2-i+K.
  const table = ops.constant(relativeEncodingsFrom(K - 1, K + n - 1, d), [K + n - 1, d]);
  let x = ops.matMul(tokens, param(p, 'embed.weight')); // [B, d]
  const out: StepOutput<T> = { logits: x, h: [], k: [], v: [] };
  for (let i = 0; i < cfg.layers; i++) {
    const L = (s: string) => param(p, `layers.${i}.${s}`);
    const h = x;
    out.h.push(h);
    const ln = layerNorm(ops, h, L('ln1.gamma'), L('ln1.beta'));
    const q = ops.reshape(linear(ops, ln, L('attn.wq')), [B, H, 1, dh]);
    const k = ops.reshape(linear(ops, ln, L('attn.wk')), [B, H, 1, dh]);
    const v = ops.reshape(linear(ops, ln, L('attn.wv')), [B, H, 1, dh]);
    out.k.push(ops.reshape(k, [B, H, dh]));
    out.v.push(ops.reshape(v, [B, H, dh]));
    const keys = ops.concat([cache.memK[i], ops.add(cache.segK[i], ops.mul(slot, k))], 2); // [B, H, K, dh]
    const values = ops.concat([cache.memV[i], ops.add(cache.segV[i], ops.mul(slot, v))], 2);

    const qu = ops.reshape(ops.add(q, ops.reshape(L('attn.u'), [1, H, 1, dh])), [B * H, 1, dh]);
    const ac = ops.matMul(qu, ops.reshape(keys, [B * H, K, dh]), false, true); // [B*H, 1, K]
    const r = ops.transpose(ops.reshape(ops.matMul(table, L('attn.wr')), [K + n - 1, H, dh]), [1, 0, 2]); // [H, K+n-1, dh]
    const qv = ops.reshape(ops.transpose(ops.add(q, ops.reshape(L('attn.v'), [1, H, 1, dh])), [1, 0, 2, 3]), [H, B, dh]);
    const bdAll = ops.transpose(ops.matMul(qv, r, false, true), [1, 0, 2]); // [B, H, K+n-1]
    const bd = ops.reshape(ops.sliceAt(bdAll, 2, start, K), [B * H, 1, K]);
    const scores = ops.add(ops.reshape(ops.scale(ops.add(ac, bd), 1 / Math.sqrt(dh)), [B, H, 1, K]), mask);
    const probs = ops.softmax(scores);
    const ctx = ops.matMul(ops.reshape(probs, [B * H, 1, K]), ops.reshape(values, [B * H, K, dh])); // [B*H, 1, dh]
    x = ops.add(h, linear(ops, ops.reshape(ctx, [B, H * dh]), L('attn.wo')));
    const ff = linear(ops, ops.relu(linear(ops, layerNorm(ops, x, L('ln2.gamma'), L('ln2.beta')), L('ff.w1'), L('ff.b1'))), L('ff.w2'), L('ff.b2'));
    x = ops.add(x, ff);
  }
  out.logits = linear(ops, layerNorm(ops, x, param(p, 'ln_f.gamma'), param(p, 'ln_f.beta')), param(p, 'head.weight'), param(p, 'head.bias'));
  return out;
}

/** Host-side feeds of position i: the one-hot slot, the table offset, and the additive mask. */
export function stepFeeds(cfg: TransformerConfig, B: number, i: number, memValid: Int32Array, cmemValid: Int32Array, memoryKeyValid: (j: number, mv: number, cv: number) => boolean): { slot: Float32Array; start: Float32Array; mask: Float32Array } {
  const { segment: n, memory: nm, compressedMemory: ncm } = cfg;
  const M = ncm + nm;
  const K = M + n;
  const slot = new Float32Array(n);
  slot[i] = 1;
  const mask = new Float32Array(B * K);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < K; j++) {
      const ok = j < M ? memoryKeyValid(j, memValid[b], cmemValid[b]) : j - M <= i;
      if (!ok) mask[b * K + j] = -1e9;
    }
  }
  return { slot, start: Float32Array.of(n - 1 - i), mask };
}
