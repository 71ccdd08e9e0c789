import type { Ops, Tensor } from '../engine/ops.js';
import { linear } from './layers.js';
import {
  type AttentionWeights,
  attentionProbs,
  contentQuery,
  positionKeys,
  positionQuery,
  projectHeads,
  splitHeads,
} from './transformer-block.js';

export interface AttentionShape {
  B: number;
  /** queries: the segment */
  n: number;
  /** keys: compressed memory + memory + segment */
  K: number;
  H: number;
  dh: number;
}

/** Additive mask [B, 1, n, K]: 0 where query i may see key j, -1e9 elsewhere. */
export function attentionMask(
  B: number,
  n: number,
  K: number,
  validKeys: (b: number, j: number) => boolean,
): Float32Array {
  const m = new Float32Array(B * n * K);
  const offset = K - n; // absolute position of query i is offset + i
  for (let b = 0; b < B; b++) {
    const keyOk = new Uint8Array(K);
    for (let j = 0; j < K; j++) keyOk[j] = validKeys(b, j) ? 1 : 0;
    for (let i = 0; i < n; i++) {
      const row = (b * n + i) * K;
      for (let j = 0; j < K; j++) if (j > offset + i || !keyOk[j]) m[row + j] = -1e9;
    }
  }
  return m;
}

/**
 * Transformer-XL's rel-shift: x[.., i, c] holds distance K-1-c; the result's [.., i, j] holds the
 * score for distance (K-n+i) - j. Pad a zero column, view as [K+1, n], drop the first row, view back.
 * Entries for j beyond the causal limit are garbage and must be masked.
 */
export function relShift<T extends Tensor>(ops: Ops<T>, x: T, lead: number, n: number, K: number): T {
  const padded = ops.pad(ops.reshape(x, [lead, n, K]), [
    [0, 0],
    [0, 0],
    [1, 0],
  ]);
  const viewed = ops.reshape(padded, [lead, K + 1, n]);
  const dropped = ops.slice(viewed, [0, 1, 0], [lead, K, n]);
  return ops.reshape(dropped, [lead, n, K]);
}

/**
 * Relative multi-head attention of the segment over [compressed memory; memory; segment]
 * (Dai et al. 2019): scores = (q + u)·k + (q + v)·W_R R_{i-j}, heads batched into few large ops.
 * `query` [B, n, d] and `context` [B, K, d] are already layer-normed. Returns the output [B, n, d]
 * and the attention probabilities [B, H, n, K] (most-used compression reads them).
 */
export function relativeAttention<T extends Tensor>(
  ops: Ops<T>,
  w: AttentionWeights<T>,
  query: T,
  context: T,
  mask: T,
  s: AttentionShape,
): { out: T; probs: T } {
  const { B, n, K, H, dh } = s;
  const q = splitHeads(ops, linear(ops, query, w.wq), B, n, H, dh);
  const k = projectHeads(ops, context, w.wk, H, dh);
  const v = projectHeads(ops, context, w.wv, H, dh);
  const r = positionKeys(ops, w.wr, K - 1, K, H, dh); // distances K-1 .. 0, the order rel-shift expects
  const ac = ops.matMul(contentQuery(ops, q, w.u), k, false, true); // [B*H, n, K]
  const bdRaw = ops.matMul(positionQuery(ops, q, w.v), r, false, true); // [H, B*n, K]
  const bdHeadsFirst = ops.reshape(ops.transpose(ops.reshape(bdRaw, [H, B, n, K]), [1, 0, 2, 3]), [B * H, n, K]);
  const probs = attentionProbs(ops, ac, relShift(ops, bdHeadsFirst, B * H, n, K), mask, H, dh);
  const ctx = ops.matMul(ops.reshape(probs, [B * H, n, K]), v); // [B*H, n, dh]
  const merged = ops.reshape(ops.transpose(ops.reshape(ctx, [B, H, n, dh]), [0, 2, 1, 3]), [B, n, H * dh]);
  return { out: linear(ops, merged, w.wo), probs };
}
