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
 * Transformer-XL's sinusoidal relative encodings: `rows` of them for distances maxDistance,
 * maxDistance-1, ... (negative ones included), the order the rel-shift trick expects.
 */
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

/** True when any row is to be reset. */
export function anyReset(reset: ArrayLike<number> | null): reset is ArrayLike<number> {
  return !!reset && Array.prototype.some.call(reset, (r: number) => r);
}

/**
 * Carried state tensors [B, ...] with the rows b where reset[b] = 1 zeroed: a new file starts from
 * empty state. Every family's forward resets its state through this.
 */
export function clearRows<T extends Tensor>(ops: Ops<T>, tensors: T[], reset: ArrayLike<number> | null): T[] {
  if (!anyReset(reset) || tensors.length === 0) return tensors;
  const B = tensors[0].shape[0];
  // Zero rows are new zeros, not state x 0: a non-finite state (a diverged step) must not outlive a reset.
  const runs: { from: number; count: number; clear: boolean }[] = [];
  for (let b = 0; b < B; b++) {
    const clear = !!reset[b];
    const last = runs[runs.length - 1];
    if (last && last.clear === clear) last.count++;
    else runs.push({ from: b, count: 1, clear });
  }
  return tensors.map((t) => {
    const rest = t.shape.slice(1);
    const zeros = (rows: number) =>
      ops.constant(new Float32Array(rows * rest.reduce((a, d) => a * d, 1)), [rows, ...rest]);
    const parts = runs.map((r) =>
      r.clear ? zeros(r.count) : ops.slice(t, [r.from, ...rest.map(() => 0)], [r.count, ...rest]),
    );
    return parts.length === 1 ? parts[0] : ops.concat(parts, 0);
  });
}

/** Codes [N] as the one-hot input tensor [N, depth] every family's forward takes. */
export function codesTensor<T extends Tensor>(ops: Ops<T>, codes: ArrayLike<number>, depth: number): T {
  return ops.constant(oneHot(codes, depth), [codes.length, depth]);
}
