/**
 * The `Ops` vocabulary in plain float64 JavaScript, for tests: a third evaluation of the model code
 * beside tfjs and the ONNX trace, sharing nothing with either, and precise enough for central
 * finite differences (float32 rounding of a loss near 5 is ~3e-7, which a difference step would
 * amplify; float64's ~1e-15 leaves only the step's own truncation error).
 *
 * Graph inputs (`ops.input`, as a training graph declares them) take their values from `feeds`.
 * `stopGradient` can be frozen: in 'record' mode each call's value is remembered in call order,
 * in 'replay' mode the remembered value is returned instead of the argument. A loss evaluated in
 * 'replay' mode at perturbed weights is then the function whose gradient a reverse pass computes
 * (stopped tensors are constants), which is what finite differences must compare against.
 */
import type { Ops, Tensor } from '../src/engine/ops.js';
import { sampleOneHot, type SamplingOptions } from '../src/engine/sampling.js';

export class F64 implements Tensor {
  constructor(
    readonly shape: readonly number[],
    readonly data: Float64Array,
  ) {
    if (data.length !== numel(shape)) throw new Error(`F64: ${data.length} values for shape [${shape}]`);
  }
}

const numel = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) st[i] = st[i + 1] * shape[i + 1];
  return st;
}

/**
 * Calls `f(outIndex, srcOffsets...)` for every element of `shape`, where each source offset
 * advances by that source's stride per axis (0 on a broadcast axis).
 */
function walk(shape: readonly number[], srcStrides: number[][], f: (i: number, offs: number[]) => void): void {
  const r = shape.length;
  const n = numel(shape);
  const idx = new Array<number>(r).fill(0);
  const offs = srcStrides.map(() => 0);
  for (let i = 0; i < n; i++) {
    f(i, offs);
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      for (let s = 0; s < srcStrides.length; s++) offs[s] += srcStrides[s][ax];
      if (idx[ax] < shape[ax]) break;
      for (let s = 0; s < srcStrides.length; s++) offs[s] -= srcStrides[s][ax] * shape[ax];
      idx[ax] = 0;
    }
  }
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`f64: cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` read as `out` (right-aligned), 0 on broadcast axes. */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = stridesOf(shape);
  const lead = out.length - shape.length;
  return out.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : st[i - lead]));
}

export class F64Ops implements Ops<F64> {
  readonly name = 'f64';
  /** values of graph inputs by name (a training graph's feeds) */
  feeds = new Map<string, { data: ArrayLike<number> }>();
  frozen: 'off' | 'record' | 'replay' = 'off';
  private stopped: Float64Array[] = [];
  private stopCalls = 0;

  /** Call before each evaluation of a graph: restarts the count of stopGradient calls. */
  begin(): void {
    this.stopCalls = 0;
    if (this.frozen === 'record') this.stopped = [];
  }

  from(data: ArrayLike<number>, shape: readonly number[]): F64 {
    return new F64([...shape], Float64Array.from(data));
  }

  constant(data: Float32Array, shape: readonly number[]): F64 {
    return this.from(data, shape);
  }
  input(name: string, data: Float32Array, shape: readonly number[]): F64 {
    const fed = this.feeds.get(name);
    if (fed && fed.data.length !== numel(shape))
      throw new Error(`f64: input ${name} fed ${fed.data.length} values for shape [${shape}]`);
    return this.from(fed ? fed.data : data, shape);
  }
  read(x: F64): Float32Array {
    return Float32Array.from(x.data);
  }

  matMul(a: F64, b: F64, transposeA = false, transposeB = false): F64 {
    const r = a.shape.length;
    if (r < 2 || b.shape.length !== r) throw new Error('f64 matMul: ranks');
    const lead = a.shape.slice(0, r - 2);
    if (lead.some((d, i) => d !== b.shape[i])) throw new Error('f64 matMul: leading dims');
    const [ar, ac] = a.shape.slice(r - 2);
    const [br, bc] = b.shape.slice(r - 2);
    const [m, k] = transposeA ? [ac, ar] : [ar, ac];
    const [k2, n] = transposeB ? [bc, br] : [br, bc];
    if (k !== k2) throw new Error(`f64 matMul: inner ${k} vs ${k2}`);
    // Element (i, j) of op(a) sits at i*ai + j*aj.
    const [ai, aj] = transposeA ? [1, ac] : [ac, 1];
    const [bi, bj] = transposeB ? [1, bc] : [bc, 1];
    const batches = numel(lead);
    const out = new Float64Array(batches * m * n);
    for (let t = 0; t < batches; t++) {
      const ao = t * ar * ac;
      const bo = t * br * bc;
      const oo = t * m * n;
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let q = 0; q < k; q++) s += a.data[ao + i * ai + q * aj] * b.data[bo + q * bi + j * bj];
          out[oo + i * n + j] = s;
        }
    }
    return new F64([...lead, m, n], out);
  }

  private binary(a: F64, b: F64, f: (x: number, y: number) => number): F64 {
    const shape = broadcastShape(a.shape, b.shape);
    const out = new Float64Array(numel(shape));
    walk(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)], (i, o) => {
      out[i] = f(a.data[o[0]], b.data[o[1]]);
    });
    return new F64(shape, out);
  }
  private unary(x: F64, f: (v: number) => number): F64 {
    return new F64(x.shape, x.data.map(f));
  }

  add(a: F64, b: F64): F64 {
    return this.binary(a, b, (x, y) => x + y);
  }
  sub(a: F64, b: F64): F64 {
    return this.binary(a, b, (x, y) => x - y);
  }
  mul(a: F64, b: F64): F64 {
    return this.binary(a, b, (x, y) => x * y);
  }
  div(a: F64, b: F64): F64 {
    return this.binary(a, b, (x, y) => x / y);
  }
  scale(x: F64, s: number): F64 {
    return this.unary(x, (v) => v * s);
  }
  neg(x: F64): F64 {
    return this.unary(x, (v) => -v);
  }
  exp(x: F64): F64 {
    return this.unary(x, Math.exp);
  }
  log(x: F64): F64 {
    return this.unary(x, Math.log);
  }
  sqrt(x: F64): F64 {
    return this.unary(x, Math.sqrt);
  }
  tanh(x: F64): F64 {
    return this.unary(x, Math.tanh);
  }
  sigmoid(x: F64): F64 {
    return this.unary(x, (v) => 1 / (1 + Math.exp(-v)));
  }
  relu(x: F64): F64 {
    return this.unary(x, (v) => (v > 0 ? v : 0));
  }
  square(x: F64): F64 {
    return this.unary(x, (v) => v * v);
  }

  reshape(x: F64, shape: readonly number[]): F64 {
    const known = numel(shape.filter((d) => d !== -1));
    const dims = shape.map((d) => (d === -1 ? numel(x.shape) / known : d));
    if (numel(dims) !== numel(x.shape)) throw new Error(`f64 reshape: [${x.shape}] -> [${shape}]`);
    return new F64(dims, x.data);
  }
  transpose(x: F64, perm: readonly number[]): F64 {
    const shape = perm.map((p) => x.shape[p]);
    const st = stridesOf(x.shape);
    const out = new Float64Array(x.data.length);
    walk(shape, [perm.map((p) => st[p])], (i, o) => (out[i] = x.data[o[0]]));
    return new F64(shape, out);
  }
  concat(xs: readonly F64[], axis: number): F64 {
    const r = xs[0].shape.length;
    const ax = axis < 0 ? axis + r : axis;
    const shape = xs[0].shape.map((d, i) => (i === ax ? xs.reduce((s, x) => s + x.shape[ax], 0) : d));
    const outer = numel(shape.slice(0, ax));
    const inner = numel(shape.slice(ax + 1));
    const out = new Float64Array(numel(shape));
    let o = 0;
    for (let t = 0; t < outer; t++)
      for (const x of xs) {
        const len = x.shape[ax] * inner;
        out.set(x.data.subarray(t * len, (t + 1) * len), o);
        o += len;
      }
    return new F64(shape, out);
  }
  slice(x: F64, begin: readonly number[], size: readonly number[]): F64 {
    const shape = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
    if (begin.some((b, i) => b < 0 || b + shape[i] > x.shape[i])) throw new Error('f64 slice: out of range');
    const st = stridesOf(x.shape);
    const start = begin.reduce((a, b, i) => a + b * st[i], 0);
    const out = new Float64Array(numel(shape));
    walk(shape, [st], (i, o) => (out[i] = x.data[start + o[0]]));
    return new F64(shape, out);
  }
  pad(x: F64, paddings: readonly [number, number][]): F64 {
    const shape = x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
    const st = stridesOf(shape);
    const start = paddings.reduce((a, [lo], i) => a + lo * st[i], 0);
    const out = new Float64Array(numel(shape));
    walk(x.shape, [st], (i, o) => (out[start + o[0]] = x.data[i]));
    return new F64(shape, out);
  }
  sliceAt(x: F64, axis: number, start: F64, size: number): F64 {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const at = Math.round(start.data[0]);
    return this.slice(
      x,
      x.shape.map((_, i) => (i === ax ? at : 0)),
      x.shape.map((d, i) => (i === ax ? size : d)),
    );
  }

  private reduce(x: F64, axes: readonly number[], keepDims: boolean, kind: 'sum' | 'mean' | 'max'): F64 {
    const r = x.shape.length;
    const ax = new Set(axes.map((a) => (a < 0 ? a + r : a)));
    const kept = x.shape.map((d, i) => (ax.has(i) ? 1 : d));
    const kst = stridesOf(kept);
    const out = new Float64Array(numel(kept)).fill(kind === 'max' ? -Infinity : 0);
    walk(
      x.shape,
      [kst.map((s, i) => (ax.has(i) ? 0 : s))],
      kind === 'max' ? (i, o) => (out[o[0]] = Math.max(out[o[0]], x.data[i])) : (i, o) => (out[o[0]] += x.data[i]),
    );
    if (kind === 'mean') {
      const count = x.data.length / Math.max(1, out.length);
      for (let i = 0; i < out.length; i++) out[i] /= count;
    }
    return new F64(keepDims ? kept : x.shape.filter((_, i) => !ax.has(i)), out);
  }
  sum(x: F64, axes: readonly number[], keepDims = false): F64 {
    return this.reduce(x, axes, keepDims, 'sum');
  }
  mean(x: F64, axes: readonly number[], keepDims = false): F64 {
    return this.reduce(x, axes, keepDims, 'mean');
  }
  max(x: F64, axes: readonly number[], keepDims = false): F64 {
    return this.reduce(x, axes, keepDims, 'max');
  }

  private lastAxis(x: F64, log: boolean): F64 {
    const d = x.shape[x.shape.length - 1];
    const out = new Float64Array(x.data.length);
    for (let o = 0; o < x.data.length; o += d) {
      let m = -Infinity;
      for (let j = 0; j < d; j++) m = Math.max(m, x.data[o + j]);
      let s = 0;
      for (let j = 0; j < d; j++) s += Math.exp(x.data[o + j] - m);
      const ls = Math.log(s);
      for (let j = 0; j < d; j++) out[o + j] = log ? x.data[o + j] - m - ls : Math.exp(x.data[o + j] - m) / s;
    }
    return new F64(x.shape, out);
  }
  softmax(x: F64): F64 {
    return this.lastAxis(x, false);
  }
  logSoftmax(x: F64): F64 {
    return this.lastAxis(x, true);
  }

  /** One-hot rows times the table: exactly the picked rows (zeros for a zero row). */
  embed(oneHot: F64, table: F64): F64 {
    return this.matMul(oneHot, table);
  }

  topRows(x: F64, score: F64, m: number): F64 {
    const [B, n, d] = x.shape;
    const out = new Float64Array(B * m * d);
    for (let b = 0; b < B; b++) {
      const idx = Array.from({ length: n }, (_, j) => j);
      idx.sort((p, q) => score.data[b * n + q] - score.data[b * n + p] || q - p);
      const keep = idx.slice(0, m).sort((p, q) => p - q);
      keep.forEach((j, t) => out.set(x.data.subarray((b * n + j) * d, (b * n + j + 1) * d), (b * m + t) * d));
    }
    return new F64([B, m, d], out);
  }

  sample(logits: F64, draws: F64, opts: SamplingOptions): F64 {
    const [B, V] = logits.shape;
    return new F64([B, V], Float64Array.from(sampleOneHot(logits.data, draws.data, B, opts)));
  }

  stopGradient(x: F64): F64 {
    if (this.frozen === 'off') return x;
    const i = this.stopCalls++;
    if (this.frozen === 'record') {
      this.stopped[i] = Float64Array.from(x.data);
      return x;
    }
    const v = this.stopped[i];
    if (!v || v.length !== x.data.length) throw new Error(`f64: stopGradient call ${i} was not recorded`);
    return new F64(x.shape, v);
  }
}
