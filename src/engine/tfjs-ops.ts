import { topRowsSelection } from './top-rows.js';
import { sampleOneHot, type SamplingOptions } from './sampling.js';
import type { Ops } from './ops.js';
import { tf } from './backend.js';

export type TfTensor = tf.Tensor;

/**
 * How matMul runs. `tiled`: explicit transposes and 2-D non-transposed products (per batch
 * element), with a custom gradient of the same shape — the only matmul wasm's XNNPACK path takes
 * (docs/engines.md). `native`: one tf.matMul, batched and transposed in-kernel, with tfjs's own
 * gradient — what a GPU wants (few large kernel launches). `auto` picks per the active backend.
 */
export type MatMulStrategy = 'auto' | 'tiled' | 'native';

/**
 * How the tiled path cuts a batched operand into 2-D pieces. `slice`: tf.slice per piece, which on
 * wasm copies the whole input out of the heap each time (quadratic in the batch). `host`: one
 * dataSync of the operand and a tensor per piece from subarrays (linear). Only the forward of a
 * custom-gradient op may leave the tape like this; both paths are differentiated by our gradFunc.
 */
export type BatchSplit = 'slice' | 'host';

export interface TfOpsOptions {
  matMul?: MatMulStrategy;
  split?: BatchSplit;
}

/**
 * Only wasm gains from tiling (4-9x measured, fwd+bwd). The GPU wants one batched kernel, and on cpu
 * the pure-JS BatchMatMul handles transposes by strides at the same speed, so tiling only adds copies.
 */
const TILED_MATMUL_BACKENDS = new Set(['wasm']);

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(x, perm);
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

/** A batched operand [..., r, c] as its 2-D pieces; a 2-D operand is its own single piece. */
function pieces(x: tf.Tensor, split: BatchSplit): tf.Tensor2D[] {
  const rk = x.rank;
  const [rows, cols] = x.shape.slice(rk - 2);
  const count = product(x.shape.slice(0, rk - 2));
  if (count === 1) return [tf.reshape(x, [rows, cols])];
  const out: tf.Tensor2D[] = [];
  if (split === 'host') {
    const data = x.dataSync() as Float32Array;
    const size = rows * cols;
    for (let i = 0; i < count; i++)
      out.push(tf.tensor2d(data.subarray(i * size, (i + 1) * size), [rows, cols], 'float32'));
  } else {
    const x3 = tf.reshape(x, [count, rows, cols]);
    for (let i = 0; i < count; i++) out.push(tf.reshape(tf.slice(x3, [i, 0, 0], [1, rows, cols]), [rows, cols]));
  }
  return out;
}

/** The product of matching pieces, reassembled to [...batch, m, n]. */
function productOfPieces(as: tf.Tensor2D[], bs: tf.Tensor2D[], batch: readonly number[]): tf.Tensor {
  const outs = as.map((ai, i) => tf.matMul(ai, bs[i]));
  const [m, n] = outs[0].shape;
  return tf.reshape(outs.length === 1 ? outs[0] : tf.concat(outs, 0), [...batch, m, n]);
}

function checkMatMul(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): void {
  const r = a.rank;
  const bad = (why: string) =>
    new Error(`matMul: ${why} (a [${a.shape}]${tA ? 'ᵀ' : ''}, b [${b.shape}]${tB ? 'ᵀ' : ''})`);
  if (r < 2 || b.rank !== r) throw bad('operands must have the same rank, at least 2');
  for (let i = 0; i < r - 2; i++) if (a.shape[i] !== b.shape[i]) throw bad('leading dimensions must match');
  const k1 = a.shape[tA ? r - 2 : r - 1];
  const k2 = b.shape[tB ? r - 1 : r - 2];
  if (k1 !== k2) throw bad(`inner dimensions differ: ${k1} vs ${k2}`);
}

/** op(a) · op(b) where op transposes the last two axes when asked, differentiated by hand. */
function tiledMatMul(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean, split: BatchSplit): tf.Tensor {
  const batch = a.shape.slice(0, a.rank - 2);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, y]);
    const value = productOfPieces(pieces(tA ? swapLast(x) : x, split), pieces(tB ? swapLast(y) : y, split), batch);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sy] = saved;
          // With C = op(A)·op(B): d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC. When an operand was
          // transposed, op(·)ᵀ is the saved operand itself, so no transpose is needed for it.
          const dys = pieces(dy, split);
          const dOpA = productOfPieces(dys, pieces(tB ? sy : swapLast(sy), split), batch);
          const dOpB = productOfPieces(pieces(tA ? sx : swapLast(sx), split), dys, batch);
          return [tA ? swapLast(dOpA) : dOpA, tB ? swapLast(dOpB) : dOpB];
        }),
    };
  });
  return f(a, b);
}

const stopGradientFn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

/**
 * The eager tfjs implementation of Ops, used for training. Holds no tensors: callers own every
 * result (and wrap steps in tf.tidy / variableGrads).
 */
export class TfOps implements Ops<TfTensor> {
  private readonly strategy: MatMulStrategy;
  private readonly split: BatchSplit;

  constructor(options: TfOpsOptions = {}) {
    this.strategy = options.matMul ?? 'auto';
    this.split = options.split ?? 'host';
  }

  get name(): string {
    return `tfjs/${tf.getBackend()}`;
  }

  /** The matMul path in effect now; `auto` follows the active backend, decided at each call. */
  matMulPath(): 'tiled' | 'native' {
    if (this.strategy !== 'auto') return this.strategy;
    return TILED_MATMUL_BACKENDS.has(tf.getBackend()) ? 'tiled' : 'native';
  }

  constant(data: Float32Array, shape: readonly number[]): TfTensor {
    return tf.tensor(data, [...shape], 'float32');
  }
  input(_name: string, data: Float32Array, shape: readonly number[]): TfTensor {
    return this.constant(data, shape);
  }

  sliceAt(x: TfTensor, axis: number, start: TfTensor, size: number): TfTensor {
    const at = Math.round(start.dataSync()[0]);
    const ax = axis < 0 ? x.rank + axis : axis;
    if (!(at >= 0 && at + size <= x.shape[ax]))
      throw new RangeError(`sliceAt: ${at} + ${size} outside axis ${ax} of length ${x.shape[ax]}`);
    const begin = x.shape.map((_, i) => (i === ax ? at : 0));
    const len = x.shape.map((v, i) => (i === ax ? size : v));
    return tf.slice(x, begin, len);
  }

  read(x: TfTensor): Float32Array {
    // dataSync may hand back the backend's own storage (cpu): copy so callers cannot alias it.
    return Float32Array.from(x.dataSync() as Float32Array);
  }

  matMul(a: TfTensor, b: TfTensor, transposeA = false, transposeB = false): TfTensor {
    checkMatMul(a, b, transposeA, transposeB);
    if (this.matMulPath() === 'native') return tf.matMul(a, b, transposeA, transposeB);
    return tiledMatMul(a, b, transposeA, transposeB, this.split);
  }
  add(a: TfTensor, b: TfTensor): TfTensor {
    return tf.add(a, b);
  }
  sub(a: TfTensor, b: TfTensor): TfTensor {
    return tf.sub(a, b);
  }
  mul(a: TfTensor, b: TfTensor): TfTensor {
    return tf.mul(a, b);
  }
  div(a: TfTensor, b: TfTensor): TfTensor {
    return tf.div(a, b);
  }
  scale(x: TfTensor, s: number): TfTensor {
    return tf.mul(x, tf.scalar(s, 'float32'));
  }
  neg(x: TfTensor): TfTensor {
    return tf.neg(x);
  }
  exp(x: TfTensor): TfTensor {
    return tf.exp(x);
  }
  log(x: TfTensor): TfTensor {
    return tf.log(x);
  }
  sqrt(x: TfTensor): TfTensor {
    return tf.sqrt(x);
  }
  tanh(x: TfTensor): TfTensor {
    return tf.tanh(x);
  }
  sigmoid(x: TfTensor): TfTensor {
    return tf.sigmoid(x);
  }
  relu(x: TfTensor): TfTensor {
    return tf.relu(x);
  }
  square(x: TfTensor): TfTensor {
    return tf.square(x);
  }

  reshape(x: TfTensor, shape: readonly number[]): TfTensor {
    return tf.reshape(x, [...shape]);
  }
  transpose(x: TfTensor, perm: readonly number[]): TfTensor {
    return tf.transpose(x, [...perm]);
  }
  concat(xs: readonly TfTensor[], axis: number): TfTensor {
    return tf.concat([...xs], axis);
  }
  slice(x: TfTensor, begin: readonly number[], size: readonly number[]): TfTensor {
    return tf.slice(x, [...begin], [...size]);
  }
  pad(x: TfTensor, paddings: readonly [number, number][]): TfTensor {
    return tf.pad(
      x,
      paddings.map(([lo, hi]) => [lo, hi] as [number, number]),
    );
  }

  sum(x: TfTensor, axes: readonly number[], keepDims = false): TfTensor {
    return tf.sum(x, [...axes], keepDims);
  }
  mean(x: TfTensor, axes: readonly number[], keepDims = false): TfTensor {
    return tf.mean(x, [...axes], keepDims);
  }
  max(x: TfTensor, axes: readonly number[], keepDims = false): TfTensor {
    return tf.max(x, [...axes], keepDims);
  }
  softmax(x: TfTensor): TfTensor {
    return tf.softmax(x, -1);
  }
  logSoftmax(x: TfTensor): TfTensor {
    return tf.logSoftmax(x, -1);
  }

  stopGradient(x: TfTensor): TfTensor {
    return stopGradientFn(x);
  }

  embed(oneHot: TfTensor, table: TfTensor): TfTensor {
    return this.matMul(oneHot, table);
  }

  topRows(x: TfTensor, score: TfTensor, m: number): TfTensor {
    const [B, n] = score.shape;
    return this.matMul(this.constant(topRowsSelection(this.read(score), B, n, m), [B, m, n]), x);
  }

  sample(logits: TfTensor, draws: TfTensor, opts: SamplingOptions): TfTensor {
    const [B, V] = logits.shape;
    return this.constant(sampleOneHot(this.read(logits), this.read(draws), B, opts), [B, V]);
  }
}

let shared: TfOps | undefined;

/** The process-wide TfOps (stateless, so one instance serves every model). */
export function tfOps(): TfOps {
  return (shared ??= new TfOps());
}
