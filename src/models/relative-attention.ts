import type { Ops, Tensor } from '../engine/ops.js';
import { linear, relativeEncodings } from './layers.js';

export interface AttentionWeights<T extends Tensor> {
  wq: T;
  wk: T;
  wv: T;
  wr: T;
  u: T;
  v: T;
  wo: T;
}

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
  const d = query.shape[2];
  const heads = (x: T, len: number) => ops.transpose(ops.reshape(x, [B, len, H, dh]), [0, 2, 1, 3]); // [B, H, len, dh]
  const q = heads(linear(ops, query, w.wq), n);
  const k = ops.reshape(heads(linear(ops, context, w.wk), K), [B * H, K, dh]);
  const v = ops.reshape(heads(linear(ops, context, w.wv), K), [B * H, K, dh]);
  const r = ops.transpose(
    ops.reshape(ops.matMul(ops.constant(relativeEncodings(K, d), [K, d]), w.wr), [K, H, dh]),
    [1, 0, 2],
  ); // [H, K, dh]

  const qu = ops.reshape(ops.add(q, ops.reshape(w.u, [1, H, 1, dh])), [B * H, n, dh]);
  const ac = ops.matMul(qu, k, false, true); // [B*H, n, K]
  // Position scores share R across the batch: one matmul per head over all B*n queries.
  const qv = ops.add(q, ops.reshape(w.v, [1, H, 1, dh])); // [B, H, n, dh]
  const qvByHead = ops.reshape(ops.transpose(qv, [1, 0, 2, 3]), [H, B * n, dh]);
  const bdRaw = ops.matMul(qvByHead, r, false, true); // [H, B*n, K]
  const bdHeadsFirst = ops.reshape(ops.transpose(ops.reshape(bdRaw, [H, B, n, K]), [1, 0, 2, 3]), [B * H, n, K]);
  const bd = relShift(ops, bdHeadsFirst, B * H, n, K);

  const scores = ops.add(ops.reshape(ops.scale(ops.add(ac, bd), 1 / Math.sqrt(dh)), [B, H, n, K]), mask);
  const probs = ops.softmax(scores);
  const ctx = ops.matMul(ops.reshape(probs, [B * H, n, K]), v); // [B*H, n, dh]
  const merged = ops.reshape(ops.transpose(ops.reshape(ctx, [B, H, n, dh]), [0, 2, 1, 3]), [B, n, H * dh]);
  return { out: linear(ops, merged, w.wo), probs };
}

/** Plain content attention (no positions, no mask): Algorithm 2's reconstruction target and estimate. */
export function contentAttention<T extends Tensor>(
  ops: Ops<T>,
  wq: T,
  wk: T,
  wv: T,
  query: T,
  memory: T,
  H: number,
  dh: number,
): T {
  const [B, n] = query.shape;
  const M = memory.shape[1];
  const heads = (x: T, len: number) =>
    ops.reshape(ops.transpose(ops.reshape(x, [B, len, H, dh]), [0, 2, 1, 3]), [B * H, len, dh]);
  const q = heads(linear(ops, query, wq), n);
  const k = heads(linear(ops, memory, wk), M);
  const v = heads(linear(ops, memory, wv), M);
  const probs = ops.softmax(ops.scale(ops.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
  return ops.reshape(ops.matMul(probs, v), [B, H, n, dh]);
}
