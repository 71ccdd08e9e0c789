import type { Ops, Tensor } from '../engine/ops.js';
import type { TransformerConfig } from './config.js';
import { linear, type Params } from './layers.js';
import {
  attentionNorm,
  attentionProbs,
  blockWeights,
  contentQuery,
  embed,
  feedForward,
  outputHead,
  positionKeys,
  positionQuery,
  projectHeads,
} from './transformer-block.js';

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
  const w = blockWeights(p, i);
  const ln = attentionNorm(ops, w, parts.length > 1 ? ops.concat(parts, 1) : parts[0]);
  return { k: projectHeads(ops, ln, w.attn.wk, H, dh), v: projectHeads(ops, ln, w.attn.wv, H, dh) };
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
  const { heads: H, dHead: dh, segment: n, memory: nm, compressedMemory: ncm } = cfg;
  const B = tokens.shape[0];
  const M = ncm + nm;
  const K = M + n;
  let x = embed(ops, p, tokens); // [B, d]
  const out: StepOutput<T> = { logits: x, h: [], k: [], v: [] };
  const flat = (t: T, len: number) => {
    if (t.shape.join() !== [B * H, len, dh].join())
      throw new Error(`step cache of shape [${t.shape}], expected [${[B * H, len, dh]}]`);
    return t;
  };
  for (let i = 0; i < cfg.layers; i++) {
    const w = blockWeights(p, i);
    const h = x;
    out.h.push(h);
    const ln = attentionNorm(ops, w, h);
    const q = ops.reshape(linear(ops, ln, w.attn.wq), [B, H, 1, dh]);
    const k = ops.reshape(linear(ops, ln, w.attn.wk), [B * H, 1, dh]);
    const v = ops.reshape(linear(ops, ln, w.attn.wv), [B * H, 1, dh]);
    out.k.push(ops.reshape(k, [B, H, dh]));
    out.v.push(ops.reshape(v, [B, H, dh]));

    const qu = contentQuery(ops, q, w.attn.u); // [B*H, 1, dh]
    const ac = ops.concat(
      [
        ops.matMul(qu, flat(cache.memK[i], M), false, true),
        ops.matMul(qu, flat(cache.segK[i], n), false, true),
        ops.matMul(qu, k, false, true),
      ],
      2,
    ); // [B*H, 1, K+1]
    // Distances K-1 down to -(n-1): position i's keys (distance ncm+nm+i-j) are rows n-1-i .. n-2-i+K;
    // its own key, at distance 0, is row K-1.
    const r = positionKeys(ops, w.attn.wr, K - 1, K + n - 1, H, dh); // [H, K+n-1, dh]
    // [B, H, K+n-1]
    const bdAll = ops.transpose(ops.matMul(positionQuery(ops, q, w.attn.v), r, false, true), [1, 0, 2]);
    // [B, H, K+1]
    const bd = ops.concat([ops.sliceAt(bdAll, 2, start, K), ops.slice(bdAll, [0, 0, K - 1], [B, H, 1])], 2);
    const probs4 = attentionProbs(ops, ac, ops.reshape(bd, [B * H, 1, K + 1]), mask, H, dh);
    const probs = ops.reshape(probs4, [B * H, 1, K + 1]);
    const part = (from: number, len: number) => ops.slice(probs, [0, 0, from], [B * H, 1, len]);
    const ctx = ops.add(
      ops.add(ops.matMul(part(0, M), flat(cache.memV[i], M)), ops.matMul(part(M, n), flat(cache.segV[i], n))),
      ops.mul(part(K, 1), v),
    ); // [B*H, 1, dh]
    x = feedForward(ops, w, ops.add(h, linear(ops, ops.reshape(ctx, [B, H * dh]), w.attn.wo)));
  }
  out.logits = outputHead(ops, p, x);
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
