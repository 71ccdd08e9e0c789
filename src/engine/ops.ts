/**
 * The small tensor vocabulary every model is written against (docs/architecture.md). One model
 * definition runs eagerly under tfjs for training and, later, is traced into an ONNX graph: so a
 * model may use only these primitives, each with a known derivative, and never touch tfjs itself.
 *
 * Shapes are row-major; the last axis is the feature axis. Broadcasting follows numpy rules.
 * Data-dependent constants (masks, one-hot inputs, selection matrices) enter through `constant`,
 * computed by the model from plain typed arrays.
 */
import type { SamplingOptions } from './sampling.js';

export interface Tensor {
  readonly shape: readonly number[];
}

export interface Ops<T extends Tensor = Tensor> {
  readonly name: string;
  constant(data: Float32Array, shape: readonly number[]): T;
  /**
   * A per-call input (codes as one-hot rows, attention masks, carried state): a constant when
   * computing, a named graph input when tracing, so one traced graph serves every call.
   */
  input(name: string, data: Float32Array, shape: readonly number[]): T;
  /** Values of a small tensor, for data-dependent decisions (most-used selection, tests). */
  read(x: T): Float32Array;

  /** [.., m, k] x [.., k, n]; leading dims must match (no broadcasting). */
  matMul(a: T, b: T, transposeA?: boolean, transposeB?: boolean): T;
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  scale(x: T, s: number): T;
  neg(x: T): T;
  exp(x: T): T;
  log(x: T): T;
  sqrt(x: T): T;
  tanh(x: T): T;
  sigmoid(x: T): T;
  relu(x: T): T;
  square(x: T): T;

  reshape(x: T, shape: readonly number[]): T;
  transpose(x: T, perm: readonly number[]): T;
  concat(xs: readonly T[], axis: number): T;
  slice(x: T, begin: readonly number[], size: readonly number[]): T;
  pad(x: T, paddings: readonly [number, number][]): T;
  /**
   * `size` entries along `axis` starting at the value of the scalar `start` [1] (a step's position
   * in its segment): a slice whose offset is data, so a traced step graph serves every position.
   */
  sliceAt(x: T, axis: number, start: T, size: number): T;

  sum(x: T, axes: readonly number[], keepDims?: boolean): T;
  mean(x: T, axes: readonly number[], keepDims?: boolean): T;
  max(x: T, axes: readonly number[], keepDims?: boolean): T;
  /** Along the last axis. */
  softmax(x: T): T;
  logSoftmax(x: T): T;

  /**
   * Rows of `table` [V, d] picked by one-hot rows `oneHot` [N, V] (a zero row picks zeros): the
   * code embedding. One-hot x table where the engine has no gather gradient (tfjs-wasm); a gather
   * with a scatter-add gradient where it does (traced graphs).
   */
  embed(oneHot: T, table: T): T;

  /**
   * Per batch row, the `m` rows of x [B, n, d] with the highest `score` [B, n], in their original
   * order, ties going to the later row (most-used compression). No gradient reaches `score`.
   */
  topRows(x: T, score: T, m: number): T;

  /** Identity forward, zero gradient backward: carried memories and the aux-loss inputs. */
  stopGradient(x: T): T;

  /**
   * One code per row of `logits` [B, V], drawn exactly as the host sampler draws it (engine/sampling.ts:
   * temperature, top-k, top-p, float64 arithmetic) from `draws` [B, 2]: each row's 32-bit uniform as
   * its high and low 16 bits, exact in float32. Returns one-hot rows [B, V]; a row whose logits hold
   * NaN or +Infinity, or only -Infinity, gets a zero row. Lets a graph generate many samples per call.
   * No gradient.
   */
  sample(logits: T, draws: T, opts: SamplingOptions): T;
}
