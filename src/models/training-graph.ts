/**
 * A family's training loss as a traced graph: every per-step datum (codes, targets, resets,
 * attention masks, the aux loss's rows, dropout masks, carried state) is a named input, so one
 * graph serves every step; `feeds` computes those inputs on the host for a batch and keeps the
 * host-side bookkeeping (memory validity) the graph cannot.
 */
import type { Feeds } from '../engine/executor.js';
import type { Ops, Tensor } from '../engine/ops.js';
import { graphInput } from './graph-inputs.js';
import { oneHot, type Params } from './layers.js';
import { nllFromPick, targetPick } from './loss.js';
import { NUM_CODES } from '../util/codes.js';

export interface TrainBatch {
  /** [B * n] input codes, row-major */
  inputs: ArrayLike<number>;
  /** [B * n] the code each position predicts */
  targets: ArrayLike<number>;
  /** [B * n] 1 where the position is scored */
  mask: ArrayLike<number>;
  /** [B] 1: the row starts from empty state */
  reset: ArrayLike<number> | null;
}

export interface TrainingLoss<T extends Tensor> {
  loss: T;
  nll: T;
  aux: T | null;
  /** the carried state after the step, in the order of `stateShapes` */
  state: T[];
}

export interface TrainingGraph {
  /** shapes of the carried state tensors, inputs `s.<i>` and outputs of `build` */
  readonly stateShapes: number[][];
  build<T extends Tensor>(ops: Ops<T>, p: Params<T>): TrainingLoss<T>;
  /** The inputs of one step besides weights and state; advances the host-side bookkeeping. */
  feeds(batch: TrainBatch, rng: { nextFloat(): number }): Feeds;
  /** Per-row counters a checkpoint carries (the transformer's memory validity), and their restore. */
  counters(): number[][];
  setCounters(c: number[][]): void;
}

/** Inputs every family's training graph has: codes, targets and row resets. */
export function commonInputs<T extends Tensor>(ops: Ops<T>, B: number, n: number) {
  return {
    tokens: graphInput(ops, 'tokens', [B * n, NUM_CODES]),
    pick: graphInput(ops, 'pick', [B * n, NUM_CODES]),
    negInvCount: graphInput(ops, 'negInvCount', [1]),
    keep: graphInput(ops, 'keep', [B, 1, 1]),
  };
}

export function commonFeeds(batch: TrainBatch, B: number): Feeds {
  const N = batch.targets.length;
  const { pick, count } = targetPick(batch.targets, batch.mask);
  const keep = Float32Array.from({ length: B }, (_, b) => (batch.reset?.[b] ? 0 : 1));
  return {
    tokens: { data: oneHot(batch.inputs, NUM_CODES), shape: [N, NUM_CODES] },
    pick: { data: pick, shape: [N, NUM_CODES] },
    negInvCount: { data: Float32Array.of(-1 / Math.max(1, count)), shape: [1] },
    keep: { data: keep, shape: [B, 1, 1] },
  };
}

export function nllOf<T extends Tensor>(ops: Ops<T>, logits: T, inputs: ReturnType<typeof commonInputs<T>>): T {
  return nllFromPick(ops, logits, inputs.pick, inputs.negInvCount);
}
