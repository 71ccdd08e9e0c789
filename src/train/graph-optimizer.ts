/**
 * Global-norm clipping and Adam written over `Ops`, so that the update can live inside a traced
 * training graph (one onnxruntime run per step: forward, reverse pass, clip, update). The
 * arithmetic is tfjs 4.22's AdamOptimizer step for step — moments, then bias correction by the
 * running beta powers (carried as state, multiplied once per step, not recomputed by pow), then
 * w - lr * m_hat / (sqrt(v_hat) + eps) — so a run can move between engines (train/adam-state.ts).
 */
import type { Ops, Tensor } from '../engine/ops.js';

export interface AdamHyper {
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** tfjs's defaults for `tf.train.adam(lr)` on a float32 backend. */
export const TFJS_ADAM: AdamHyper = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

export interface AdamState<T extends Tensor> {
  m: T[];
  v: T[];
  /** [2]: beta1^t and beta2^t of the step about to be taken (tfjs's accBeta1/accBeta2) */
  betaPowers: T;
}

/** sqrt of the sum of squares of every gradient: the norm clipping compares with `clip`. */
export function globalNorm<T extends Tensor>(ops: Ops<T>, grads: readonly T[]): T {
  const squares = grads.map((g) =>
    ops.reshape(
      ops.sum(
        ops.square(g),
        g.shape.map((_, i) => i),
      ),
      [1],
    ),
  );
  const total = squares.length === 1 ? squares[0] : squares.reduce((a, s) => ops.add(a, s));
  return ops.sqrt(total);
}

/**
 * Gradients scaled so their global norm is at most `clip` (0: unclipped): g * clip / max(norm, clip),
 * which is g where norm <= clip.
 */
export function clipByGlobalNorm<T extends Tensor>(ops: Ops<T>, grads: readonly T[], norm: T, clip: number): T[] {
  if (clip <= 0) return [...grads];
  const c = ops.constant(new Float32Array([clip]), [1]);
  // max(norm, clip) = (norm + clip + |norm - clip|) / 2, in the Ops vocabulary.
  const diff = ops.sub(norm, c);
  const larger = ops.scale(ops.add(ops.add(norm, c), ops.sqrt(ops.square(diff))), 0.5);
  const factor = ops.div(c, larger);
  return grads.map((g) => ops.mul(g, factor));
}

/** One Adam step at learning rate `lr` [1]: the new weights and optimizer state. */
export function adamStep<T extends Tensor>(
  ops: Ops<T>,
  weights: readonly T[],
  grads: readonly T[],
  state: AdamState<T>,
  lr: T,
  h: AdamHyper = TFJS_ADAM,
): { weights: T[]; state: AdamState<T> } {
  const b1 = ops.slice(state.betaPowers, [0], [1]);
  const b2 = ops.slice(state.betaPowers, [1], [1]);
  const one = ops.constant(new Float32Array([1]), [1]);
  const c1 = ops.sub(one, b1);
  const c2 = ops.sub(one, b2);
  const eps = ops.constant(new Float32Array([h.epsilon]), [1]);
  const m: T[] = [];
  const v: T[] = [];
  const next = weights.map((w, i) => {
    const g = grads[i];
    const mi = ops.add(ops.scale(state.m[i], h.beta1), ops.scale(g, 1 - h.beta1));
    const vi = ops.add(ops.scale(state.v[i], h.beta2), ops.scale(ops.square(g), 1 - h.beta2));
    m.push(mi);
    v.push(vi);
    const step = ops.div(ops.div(mi, c1), ops.add(ops.sqrt(ops.div(vi, c2)), eps));
    return ops.add(ops.mul(step, ops.neg(lr)), w);
  });
  const hyper = ops.constant(Float32Array.of(h.beta1, h.beta2), [2]);
  return { weights: next, state: { m, v, betaPowers: ops.mul(state.betaPowers, hyper) } };
}
