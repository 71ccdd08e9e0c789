/**
 * The pieces of one pre-LN transformer block, written once for every mode that runs it: segment
 * mode (training, evaluation, priming), step mode (generation) and the auxiliary attention loss.
 * Each mode arranges the same projections, head folding, relative positions, scores, feed-forward
 * and output head around its own attention layout.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { layerNorm, linear, param, type Params, relativeEncodingsFrom } from './layers.js';

export interface AttentionWeights<T extends Tensor> {
  wq: T;
  wk: T;
  wv: T;
  wr: T;
  u: T;
  v: T;
  wo: T;
}

export interface BlockWeights<T extends Tensor> {
  ln1: { gamma: T; beta: T };
  attn: AttentionWeights<T>;
  ln2: { gamma: T; beta: T };
  ff: { w1: T; b1: T; w2: T; b2: T };
}

/** Layer i's weights, by their names in the parameter files. */
export function blockWeights<T extends Tensor>(p: Params<T>, i: number): BlockWeights<T> {
  const w = (s: string) => param(p, `layers.${i}.${s}`);
  return {
    ln1: { gamma: w('ln1.gamma'), beta: w('ln1.beta') },
    attn: {
      wq: w('attn.wq'),
      wk: w('attn.wk'),
      wv: w('attn.wv'),
      wr: w('attn.wr'),
      u: w('attn.u'),
      v: w('attn.v'),
      wo: w('attn.wo'),
    },
    ln2: { gamma: w('ln2.gamma'), beta: w('ln2.beta') },
    ff: { w1: w('ff.w1'), b1: w('ff.b1'), w2: w('ff.w2'), b2: w('ff.b2') },
  };
}

/** The attention sublayer's layer norm. */
export function attentionNorm<T extends Tensor>(ops: Ops<T>, w: BlockWeights<T>, x: T): T {
  return layerNorm(ops, x, w.ln1.gamma, w.ln1.beta);
}

/** One-hot codes [N, NUM_CODES] -> embeddings [N, d]. */
export function embed<T extends Tensor>(ops: Ops<T>, p: Params<T>, tokens: T): T {
  return ops.embed(tokens, param(p, 'embed.weight'));
}

/** [B, len, H * dh] -> [B, H, len, dh]. */
export function splitHeads<T extends Tensor>(ops: Ops<T>, x: T, B: number, len: number, H: number, dh: number): T {
  return ops.transpose(ops.reshape(x, [B, len, H, dh]), [0, 2, 1, 3]);
}

/** [B, len, H * dh] -> [B * H, len, dh]: heads folded into the batch axis of one batched matmul. */
export function foldHeads<T extends Tensor>(ops: Ops<T>, x: T, B: number, len: number, H: number, dh: number): T {
  return ops.reshape(splitHeads(ops, x, B, len, H, dh), [B * H, len, dh]);
}

/** Keys or values [B * H, len, dh] of layer-normed `context` [B, len, d] under projection `w`. */
export function projectHeads<T extends Tensor>(ops: Ops<T>, context: T, w: T, H: number, dh: number): T {
  const [B, len] = context.shape;
  return foldHeads(ops, linear(ops, context, w), B, len, H, dh);
}

/**
 * W_R R for `rows` relative distances maxDistance, maxDistance-1, ... as [H, rows, dh]: the
 * sinusoidal encodings (Transformer-XL) projected once and shared by every query of the batch.
 */
export function positionKeys<T extends Tensor>(
  ops: Ops<T>,
  wr: T,
  maxDistance: number,
  rows: number,
  H: number,
  dh: number,
): T {
  const d = wr.shape[0];
  const table = ops.constant(relativeEncodingsFrom(maxDistance, rows, d), [rows, d]);
  return ops.transpose(ops.reshape(ops.matMul(table, wr), [rows, H, dh]), [1, 0, 2]);
}

/** Queries [B, H, n, dh] plus the content bias u, heads folded: [B * H, n, dh]. */
export function contentQuery<T extends Tensor>(ops: Ops<T>, q: T, u: T): T {
  const [B, H, n, dh] = q.shape;
  return ops.reshape(ops.add(q, ops.reshape(u, [1, H, 1, dh])), [B * H, n, dh]);
}

/** Queries [B, H, n, dh] plus the position bias v, heads leading: [H, B * n, dh] (R is shared by the batch). */
export function positionQuery<T extends Tensor>(ops: Ops<T>, q: T, v: T): T {
  const [B, H, n, dh] = q.shape;
  return ops.reshape(ops.transpose(ops.add(q, ops.reshape(v, [1, H, 1, dh])), [1, 0, 2, 3]), [H, B * n, dh]);
}

/**
 * Attention probabilities [B, H, n, K] from content scores `ac` and position scores `bd` (both
 * [B * H, n, K], bd already aligned to the keys) and the additive mask [B, 1, n, K].
 */
export function attentionProbs<T extends Tensor>(ops: Ops<T>, ac: T, bd: T, mask: T, H: number, dh: number): T {
  const [BH, n, K] = ac.shape;
  return ops.softmax(ops.add(ops.reshape(ops.scale(ops.add(ac, bd), 1 / Math.sqrt(dh)), [BH / H, H, n, K]), mask));
}

/** The feed-forward sublayer with its residual: x + drop(W2 relu(W1 LN(x) + b1) + b2). */
export function feedForward<T extends Tensor>(ops: Ops<T>, w: BlockWeights<T>, x: T, drop: (t: T) => T = (t) => t): T {
  const { ln2, ff } = w;
  const hidden = ops.relu(linear(ops, layerNorm(ops, x, ln2.gamma, ln2.beta), ff.w1, ff.b1));
  return ops.add(x, drop(linear(ops, hidden, ff.w2, ff.b2)));
}

/** Final layer norm and the 256-way output layer: [.., d] -> logits [.., NUM_CODES]. */
export function outputHead<T extends Tensor>(ops: Ops<T>, p: Params<T>, x: T): T {
  const normed = layerNorm(ops, x, param(p, 'ln_f.gamma'), param(p, 'ln_f.beta'));
  return linear(ops, normed, param(p, 'head.weight'), param(p, 'head.bias'));
}
