/**
 * What every family's block graph shares: drawing each step's code in the graph from the previous
 * step's log-probabilities and the host's uniforms, and returning the codes drawn.
 */
import type { SamplingOptions } from '../engine/sampling.js';
import type { Ops, Tensor } from '../engine/ops.js';
import { graphInput as inp } from './graph-inputs.js';
import { NUM_CODES } from '../util/codes.js';

export interface BlockSampler<T extends Tensor> {
  /** step j's code per row, one-hot [B, 256], drawn from `logprobs` [B, 256] */
  draw(j: number, logprobs: T): T;
  /** the codes drawn [K, B], -1 where a row's log-probabilities could not be sampled */
  codes(): T;
}

/** Declares `draws` [K, B, 2] (Ops.sample's halves of the host's uniforms) and samples from it. */
export function blockSampler<T extends Tensor>(
  ops: Ops<T>,
  B: number,
  K: number,
  sampling: SamplingOptions,
): BlockSampler<T> {
  const draws = inp(ops, 'draws', [K, B, 2]);
  // code + 1 per row, so an all-zero (unsampleable) row reads as -1
  const numbered = ops.constant(
    Float32Array.from({ length: NUM_CODES }, (_, c) => c + 1),
    [NUM_CODES, 1],
  );
  const drawn: T[] = [];
  return {
    draw(j, logprobs) {
      const u = ops.reshape(ops.slice(draws, [j, 0, 0], [1, B, 2]), [B, 2]);
      const oneHot = ops.sample(logprobs, u, sampling);
      drawn.push(ops.matMul(oneHot, numbered));
      return oneHot;
    },
    codes() {
      const minusOne = ops.constant(Float32Array.of(-1), [1]);
      return ops.add(ops.reshape(ops.concat(drawn, 0), [drawn.length, B]), minusOne);
    },
  };
}
