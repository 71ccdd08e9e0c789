/** Helpers for declaring a graph's inputs and outputs (the graph builders of each family). */
import type { Ops, Tensor } from '../engine/ops.js';

const zeros = (shape: readonly number[]) => new Float32Array(shape.reduce((a, v) => a * v, 1));

/**
 * A named graph input. Tracing records its name and shape; the tfjs executor substitutes the fed
 * value, so the zeros here are never read.
 */
export function graphInput<T extends Tensor>(ops: Ops<T>, name: string, shape: readonly number[]): T {
  return ops.input(name, zeros(shape), shape);
}

/** Stacks per-layer [B, ...] tensors into one [L, B, ...] output: one transfer instead of L. */
export function stackLayers<T extends Tensor>(ops: Ops<T>, xs: T[]): T {
  return ops.concat(
    xs.map((x) => ops.reshape(x, [1, ...x.shape])),
    0,
  );
}
