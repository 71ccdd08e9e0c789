import type { Ops, Tensor } from '../engine/ops.js';

export type Params<T extends Tensor = Tensor> = Map<string, T>;

export function param<T extends Tensor>(p: Params<T>, name: string): T {
  const t = p.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

/** Layer norm over the last axis: the transformer blocks are pre-LN, which trains stably without warm-up tricks. */
export function layerNorm<T extends Tensor>(ops: Ops<T>, x: T, gamma: T, beta: T, eps = 1e-5): T {
  const last = x.shape.length - 1;
  const mu = ops.mean(x, [last], true);
  const centered = ops.sub(x, mu);
  const variance = ops.mean(ops.square(centered), [last], true);
  const inv = ops.div(centered, ops.sqrt(ops.add(variance, ops.constant(new Float32Array([eps]), [1]))));
  return ops.add(ops.mul(inv, gamma), beta);
}

/** x [.., in] times w [in, out] (+ b), flattening leading axes into one matmul. */
export function linear<T extends Tensor>(ops: Ops<T>, x: T, w: T, b?: T): T {
  const lead = x.shape.slice(0, -1);
  const rows = lead.reduce((a, v) => a * v, 1);
  let y = ops.matMul(ops.reshape(x, [rows, x.shape[x.shape.length - 1]]), w);
  if (b) y = ops.add(y, b);
  return ops.reshape(y, [...lead, w.shape[1]]);
}

/**
 * Transformer-XL's sinusoidal relative encodings for distances K-1 down to 0 (row r holds distance
 * K-1-r): the order the rel-shift trick expects.
 */
export function relativeEncodings(K: number, d: number): Float32Array {
  return relativeEncodingsFrom(K - 1, K, d);
}

/** `rows` encodings for distances maxDistance, maxDistance-1, ... (negative ones included). */
export function relativeEncodingsFrom(maxDistance: number, rows: number, d: number): Float32Array {
  const out = new Float32Array(rows * d);
  const half = Math.floor(d / 2);
  for (let r = 0; r < rows; r++) {
    const pos = maxDistance - r;
    for (let i = 0; i < half; i++) {
      const freq = 1 / Math.pow(10000, (2 * i) / d);
      out[r * d + i] = Math.sin(pos * freq);
      out[r * d + half + i] = Math.cos(pos * freq);
    }
  }
  return out;
}

/** One-hot rows for codes: the embedding is one-hot x matrix because wasm has no gather gradient. */
export function oneHot(codes: ArrayLike<number>, depth: number): Float32Array {
  const out = new Float32Array(codes.length * depth);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (!(c >= 0 && c < depth) || c !== Math.floor(c)) throw new Error(`code ${c} at ${i} is outside 0..${depth - 1}`);
    out[i * depth + c] = 1;
  }
  return out;
}
