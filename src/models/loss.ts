/**
 * The losses: the next-code NLL every family trains on, and the Compressive Transformer's
 * auxiliary compression losses (paper section 3.2, Algorithm 2), which train only f_c.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { decompress } from './compression.js';
import { layerNorm, linear, oneHot } from './layers.js';
import { type BlockWeights, foldHeads } from './transformer-block.js';
import { NUM_CODES } from '../util/codes.js';

/** One-hot target rows [N * NUM_CODES], zero where mask is 0, and how many positions are scored. */
export function targetPick(targets: ArrayLike<number>, mask: ArrayLike<number>): { pick: Float32Array; count: number } {
  const pick = oneHot(targets, NUM_CODES);
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    if (!mask[i]) pick.fill(0, i * NUM_CODES, (i + 1) * NUM_CODES);
    else count++;
  }
  return { pick, count };
}

/** Mean next-code NLL (nats) over positions with mask 1. */
export function nllLoss<T extends Tensor>(
  ops: Ops<T>,
  logits: T,
  targets: ArrayLike<number>,
  mask: ArrayLike<number>,
): T {
  const N = targets.length;
  const { pick, count } = targetPick(targets, mask);
  const picked = ops.sum(ops.mul(ops.logSoftmax(logits), ops.constant(pick, [N, NUM_CODES])), [0, 1]);
  return ops.scale(picked, -1 / Math.max(1, count));
}

/**
 * The same NLL with the targets as a tensor: `pick` [N, NUM_CODES] one-hot rows (zero rows for
 * unscored positions) and `negInvCount` [1] = -1 / scored positions — the inputs of a traced
 * training graph.
 */
export function nllFromPick<T extends Tensor>(ops: Ops<T>, logits: T, pick: T, negInvCount: T): T {
  return ops.mul(ops.sum(ops.mul(ops.logSoftmax(logits), pick), [0, 1]), negInvCount);
}

/** Plain content attention (no positions, no mask): Algorithm 2's reconstruction target and estimate. */
function contentAttention<T extends Tensor>(
  ops: Ops<T>,
  w: BlockWeights<T>,
  query: T,
  memory: T,
  H: number,
  dh: number,
): T {
  const [B, n] = query.shape;
  const M = memory.shape[1];
  const q = foldHeads(ops, linear(ops, query, w.attn.wq), B, n, H, dh);
  const k = foldHeads(ops, linear(ops, memory, w.attn.wk), B, M, H, dh);
  const v = foldHeads(ops, linear(ops, memory, w.attn.wv), B, M, H, dh);
  const probs = ops.softmax(ops.scale(ops.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
  return ops.reshape(ops.matMul(probs, v), [B, H, n, dh]);
}

/**
 * Rows whose old memories were all real history: only they give a compression loss term. The count
 * is a number when the rows are known while building (eager), or 1/count as a [1] tensor when they
 * are an input of a traced training graph.
 */
export type AuxRows<T extends Tensor> =
  | {
      /** [B, 1, 1]: 1 for a counted row */
      mask: T;
      count: number;
    }
  | { mask: T; invCount: T };

/** A sum over counted rows divided by (count x per-row size): the mean squared difference. */
function meanOverRows<T extends Tensor>(ops: Ops<T>, sum: T, rows: AuxRows<T>, perRow: number): T {
  return 'count' in rows
    ? ops.scale(sum, 1 / (rows.count * perRow))
    : ops.mul(ops.scale(sum, 1 / perRow), rows.invCount);
}

/**
 * Algorithm 2: the layer's own attention (weights `frozen`, without gradient) from the segment's
 * layer inputs `h` over the old memories, against the same attention over their compression. Mean
 * squared difference over counted rows.
 */
export function attentionReconstructionLoss<T extends Tensor>(
  ops: Ops<T>,
  frozen: BlockWeights<T>,
  h: T,
  old: T,
  compressed: T,
  rows: AuxRows<T>,
  H: number,
  dh: number,
): T {
  const [B, n] = h.shape;
  const ln = (t: T) => layerNorm(ops, t, frozen.ln1.gamma, frozen.ln1.beta);
  const q = ln(h);
  const target = contentAttention(ops, frozen, q, ln(old), H, dh);
  const estimate = contentAttention(ops, frozen, q, ln(compressed), H, dh);
  const diff = ops.mul(ops.reshape(ops.sub(target, estimate), [B, H * n * dh, 1]), rows.mask);
  return meanOverRows(ops, ops.sum(ops.square(diff), [0, 1, 2]), rows, H * n * dh);
}

/** Auto-encoding loss: old memories against their reconstruction from the compression. */
export function autoencodingLoss<T extends Tensor>(
  ops: Ops<T>,
  old: T,
  compressed: T,
  rate: number,
  decoder: { w: T; b: T },
  rows: AuxRows<T>,
): T {
  const [, n, d] = old.shape;
  const recon = decompress(ops, compressed, rate, decoder.w, decoder.b);
  const diff = ops.mul(ops.sub(old, recon), rows.mask);
  return meanOverRows(ops, ops.sum(ops.square(diff), [0, 1, 2]), rows, n * d);
}
