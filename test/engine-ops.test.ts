import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../src/engine/backend.js';
import { TfOps, tfOps, type TfTensor } from '../src/engine/tfjs-ops.js';

// References are float64 JavaScript written from the definitions, independent of tfjs; gradients
// are central finite differences of those references, so a wrong tfjs result cannot agree with them.

type Shape = readonly number[];
interface Arr {
  data: Float64Array;
  shape: Shape;
}

const size = (s: Shape) => s.reduce((p, d) => p * d, 1);
const flat = (s: Shape, idx: readonly number[]) => idx.reduce((f, v, d) => f * s[d] + v, 0);

function forEachIndex(shape: Shape, cb: (idx: number[], i: number) => void): void {
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < size(shape); i++) {
    cb(idx, i);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}
function build(shape: Shape, at: (idx: number[]) => number): Arr {
  const data = new Float64Array(size(shape));
  forEachIndex(shape, (idx, i) => {
    data[i] = at(idx);
  });
  return { data, shape };
}

let seed = 12345;
function rand(shape: Shape, lo = -1, hi = 1): Arr {
  // Values exactly representable in float32, so tfjs and the references see the same inputs.
  return build(shape, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return Math.fround(lo + ((seed >>> 8) / 2 ** 24) * (hi - lo));
  });
}

const refTranspose = (x: Arr, perm: Shape) =>
  build(
    perm.map((p) => x.shape[p]),
    (idx) => {
      const src: number[] = [];
      perm.forEach((p, d) => {
        src[p] = idx[d];
      });
      return x.data[flat(x.shape, src)];
    },
  );
const refSlice = (x: Arr, begin: Shape, sz: Shape) =>
  build(
    sz,
    (idx) =>
      x.data[
        flat(
          x.shape,
          idx.map((v, d) => v + begin[d]),
        )
      ],
  );
const refPad = (x: Arr, p: [number, number][]) =>
  build(
    x.shape.map((s, d) => s + p[d][0] + p[d][1]),
    (idx) => {
      const src = idx.map((v, d) => v - p[d][0]);
      return src.every((v, d) => v >= 0 && v < x.shape[d]) ? x.data[flat(x.shape, src)] : 0;
    },
  );
function refConcat(xs: Arr[], axis: number): Arr {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  return build(shape, (idx) => {
    let k = idx[axis],
      part = 0;
    while (k >= xs[part].shape[axis]) k -= xs[part++].shape[axis];
    const src = [...idx];
    src[axis] = k;
    return xs[part].data[flat(xs[part].shape, src)];
  });
}
function refMatMul(a: Arr, b: Arr, tA: boolean, tB: boolean): Arr {
  const r = a.shape.length;
  const m = a.shape[tA ? r - 1 : r - 2],
    k = a.shape[tA ? r - 2 : r - 1],
    n = b.shape[tB ? r - 2 : r - 1];
  return build([...a.shape.slice(0, r - 2), m, n], (idx) => {
    const bi = idx.slice(0, r - 2),
      i = idx[r - 2],
      j = idx[r - 1];
    let s = 0;
    for (let q = 0; q < k; q++) {
      s +=
        a.data[flat(a.shape, [...bi, ...(tA ? [q, i] : [i, q])])] *
        b.data[flat(b.shape, [...bi, ...(tB ? [j, q] : [q, j])])];
    }
    return s;
  });
}
function refRows(x: Arr, f: (row: Float64Array) => Float64Array): Arr {
  const n = x.shape[x.shape.length - 1],
    data = new Float64Array(x.data.length);
  for (let o = 0; o < data.length; o += n) data.set(f(x.data.subarray(o, o + n)), o);
  return { data, shape: x.shape };
}
const logSumExp = (r: Float64Array) => {
  const m = Math.max(...r);
  return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
};
const refLogSoftmax = (x: Arr) =>
  refRows(x, (r) => {
    const l = logSumExp(r);
    return r.map((v) => v - l);
  });
const refSoftmax = (x: Arr) =>
  refRows(x, (r) => {
    const l = logSumExp(r);
    return r.map((v) => Math.exp(v - l));
  });
function refReduce(x: Arr, axes: Shape, keep: boolean, kind: 'sum' | 'mean' | 'max'): Arr {
  const keptShape = x.shape.map((s, d) => (axes.includes(d) ? 1 : s));
  const out = new Float64Array(size(keptShape)).fill(kind === 'max' ? -Infinity : 0);
  forEachIndex(x.shape, (idx, i) => {
    const o = flat(
      keptShape,
      idx.map((v, d) => (axes.includes(d) ? 0 : v)),
    );
    out[o] = kind === 'max' ? Math.max(out[o], x.data[i]) : out[o] + x.data[i];
  });
  if (kind === 'mean')
    out.forEach((v, i) => {
      out[i] = v / size(axes.map((d) => x.shape[d]));
    });
  return { data: out, shape: keep ? keptShape : x.shape.filter((_, d) => !axes.includes(d)) };
}

/** ∂/∂inputs of Σ w ⊙ f(inputs), by central differences in float64. */
function fdGrads(f: (...xs: Arr[]) => Arr, xs: Arr[], w: Float64Array, eps = 1e-4): Float64Array[] {
  const loss = () => f(...xs).data.reduce((s, v, i) => s + v * w[i], 0);
  return xs.map((x) =>
    x.data.map((v, i) => {
      x.data[i] = v + eps;
      const up = loss();
      x.data[i] = v - eps;
      const down = loss();
      x.data[i] = v;
      return (up - down) / (2 * eps);
    }),
  );
}

/** tfjs value of f and gradients of Σ w ⊙ f, as plain arrays. */
function tfRun(
  f: (...xs: TfTensor[]) => TfTensor,
  xs: Arr[],
  w?: Float64Array,
): { y: Float32Array; shape: number[]; grads: Float32Array[] } {
  let out = { y: new Float32Array(), shape: [] as number[], grads: [] as Float32Array[] };
  tf.tidy(() => {
    const ts = xs.map((x) => tf.tensor(Float32Array.from(x.data), [...x.shape]));
    const y = f(...ts);
    const grads = w
      ? tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), tf.tensor(Float32Array.from(w), y.shape))))(ts)
      : [];
    out = {
      y: Float32Array.from(y.dataSync()),
      shape: y.shape,
      grads: grads.map((g) => Float32Array.from(g.dataSync())),
    };
  });
  return out;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 1e-5, rtol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const ok = Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i]);
    if (!ok) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Forward against the reference; gradient against finite differences of the reference. */
function check(
  what: string,
  f: (...xs: TfTensor[]) => TfTensor,
  ref: (...xs: Arr[]) => Arr,
  xs: Arr[],
  gradTol = 2e-4,
): void {
  const expected = ref(...xs);
  const w = rand(expected.shape).data;
  const got = tfRun(f, xs, w);
  assert.deepEqual(got.shape, [...expected.shape], `${what}: shape`);
  close(got.y, expected.data, `${what} forward`);
  fdGrads(ref, xs, w).forEach((g, i) => close(got.grads[i], g, `${what} gradient of input ${i}`, gradTol, gradTol));
}

const BACKENDS = ['wasm', 'cpu'] as const;
const STRATEGIES = [
  { label: 'tiled/host', ops: new TfOps({ matMul: 'tiled', split: 'host' }) },
  { label: 'tiled/slice', ops: new TfOps({ matMul: 'tiled', split: 'slice' }) },
  { label: 'native', ops: new TfOps({ matMul: 'native' }) },
];
const MATMUL_CASES: { batch: number[]; m: number; k: number; n: number }[] = [
  { batch: [], m: 3, k: 4, n: 5 },
  { batch: [3], m: 2, k: 5, n: 4 },
  { batch: [2, 3], m: 4, k: 3, n: 2 },
  { batch: [1], m: 6, k: 2, n: 3 },
];

for (const backend of BACKENDS) {
  test(`${backend}: matMul, every transpose combination, 2-D and batched, on every path`, async () => {
    await initBackend(backend);
    const before = tf.memory().numTensors;
    for (const { label, ops } of STRATEGIES) {
      for (const { batch, m, k, n } of MATMUL_CASES) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            const what = `${backend} ${label} [${batch}] ${m}x${k}x${n} tA=${tA} tB=${tB}`;
            const a = rand([...batch, ...(tA ? [k, m] : [m, k])]);
            const b = rand([...batch, ...(tB ? [n, k] : [k, n])]);
            check(
              what,
              (x, y) => ops.matMul(x, y, tA, tB),
              (x, y) => refMatMul(x, y, tA, tB),
              [a, b],
            );
            // tfjs's own autodiff of its own matMul: an oracle computed by a different route.
            const w = rand([...batch, m, n]).data;
            const ours = tfRun((x, y) => ops.matMul(x, y, tA, tB), [a, b], w);
            const theirs = tfRun((x, y) => tf.matMul(x, y, tA, tB), [a, b], w);
            ours.grads.forEach((g, i) => close(g, theirs.grads[i], `${what} vs tf.matMul gradient ${i}`));
          }
        }
      }
    }
    assert.equal(tf.memory().numTensors, before, 'matMul leaks no tensors');
  });

  test(`${backend}: matMul picks its path by backend and rejects mismatched operands`, async () => {
    await initBackend(backend);
    assert.equal(tfOps().matMulPath(), backend === 'wasm' ? 'tiled' : 'native');
    assert.equal(tfOps(), tfOps());
    assert.equal(tfOps().name, `tfjs/${backend}`);
    const a = tf.zeros([2, 3, 4]),
      b = tf.zeros([3, 4, 5]),
      c = tf.zeros([2, 5, 5]);
    for (const { ops } of STRATEGIES) {
      assert.throws(() => ops.matMul(a, b), /leading dimensions/);
      assert.throws(() => ops.matMul(a, c), /inner dimensions/);
    }
    tf.dispose([a, b, c]);
  });

  test(`${backend}: elementwise ops and reductions against JS references`, async () => {
    await initBackend(backend);
    const ops = tfOps();
    const x = rand([2, 3, 4]),
      pos = rand([2, 3, 4], 0.1, 2),
      y = rand([4]),
      yPos = rand([4], 0.5, 2);
    const unary: [string, (t: TfTensor) => TfTensor, (v: number) => number, Arr][] = [
      ['neg', (t) => ops.neg(t), (v) => -v, x],
      ['exp', (t) => ops.exp(t), Math.exp, x],
      ['log', (t) => ops.log(t), Math.log, pos],
      ['sqrt', (t) => ops.sqrt(t), Math.sqrt, pos],
      ['tanh', (t) => ops.tanh(t), Math.tanh, x],
      ['sigmoid', (t) => ops.sigmoid(t), (v) => 1 / (1 + Math.exp(-v)), x],
      ['relu', (t) => ops.relu(t), (v) => Math.max(0, v), x],
      ['square', (t) => ops.square(t), (v) => v * v, x],
      ['scale', (t) => ops.scale(t, -2.5), (v) => -2.5 * v, x],
    ];
    for (const [name, f, g, input] of unary)
      check(`${backend} ${name}`, f, (t) => build(t.shape, (i) => g(t.data[flat(t.shape, i)])), [input]);
    const binary: [string, (a: TfTensor, b: TfTensor) => TfTensor, (u: number, v: number) => number, Arr][] = [
      ['add', (a, b) => ops.add(a, b), (u, v) => u + v, y],
      ['sub', (a, b) => ops.sub(a, b), (u, v) => u - v, y],
      ['mul', (a, b) => ops.mul(a, b), (u, v) => u * v, y],
      ['div', (a, b) => ops.div(a, b), (u, v) => u / v, yPos],
    ];
    for (const [name, f, g, rhs] of binary) {
      // rhs [4] broadcasts along the last axis, so its gradient must sum over the leading ones.
      check(
        `${backend} ${name} (broadcast)`,
        f,
        (a, b) => build(a.shape, (i) => g(a.data[flat(a.shape, i)], b.data[i[2]])),
        [x, rhs],
      );
    }
    for (const kind of ['sum', 'mean', 'max'] as const) {
      for (const [axes, keep] of [
        [[1], false],
        [[0, 2], true],
        [[2], true],
        [[0, 1, 2], false],
      ] as [number[], boolean][]) {
        check(
          `${backend} ${kind} axes=${axes} keep=${keep}`,
          (t) => ops[kind](t, axes, keep),
          (t) => refReduce(t, axes, keep, kind),
          [x],
        );
      }
    }
    const c = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = ops.constant(c, [2, 3]);
    assert.deepEqual(t.shape, [2, 3]);
    const r = ops.read(t);
    assert.deepEqual([...r], [...c]);
    r[0] = 99; // read must hand back a copy, never the backend's storage
    assert.equal(ops.read(t)[0], 1);
    t.dispose();
  });

  test(`${backend}: softmax and logSoftmax along the last axis, with gradients`, async () => {
    await initBackend(backend);
    const ops = tfOps();
    const x = rand([2, 3, 5], -3, 3);
    check(`${backend} softmax`, (t) => ops.softmax(t), refSoftmax, [x]);
    check(`${backend} logSoftmax`, (t) => ops.logSoftmax(t), refLogSoftmax, [x]);
  });

  test(`${backend}: shape ops (reshape, transpose, slice, concat, pad) with gradients`, async () => {
    await initBackend(backend);
    const ops = tfOps();
    const x = rand([2, 3, 4]);
    check(
      `${backend} reshape`,
      (t) => ops.reshape(t, [6, 4]),
      (t) => ({ data: t.data, shape: [6, 4] }),
      [x],
    );
    for (const perm of [
      [1, 0, 2],
      [2, 0, 1],
      [0, 2, 1],
    ])
      check(
        `${backend} transpose ${perm}`,
        (t) => ops.transpose(t, perm),
        (t) => refTranspose(t, perm),
        [x],
      );
    check(
      `${backend} slice`,
      (t) => ops.slice(t, [1, 1, 0], [1, 2, 3]),
      (t) => refSlice(t, [1, 1, 0], [1, 2, 3]),
      [x],
    );
    check(
      `${backend} slice middle`,
      (t) => ops.slice(t, [0, 1, 1], [2, 1, 2]),
      (t) => refSlice(t, [0, 1, 1], [2, 1, 2]),
      [x],
    );
    for (const axis of [0, 1, 2]) {
      const shape = [2, 3, 4];
      shape[axis] = 2;
      const parts = [x, rand(shape), rand(x.shape)];
      check(
        `${backend} concat axis ${axis}`,
        (...ts) => ops.concat(ts, axis),
        (...as) => refConcat(as, axis),
        parts,
      );
    }
    const p: [number, number][] = [
      [1, 0],
      [0, 2],
      [3, 1],
    ];
    check(
      `${backend} pad`,
      (t) => ops.pad(t, p),
      (t) => refPad(t, p),
      [x],
    );
  });

  test(`${backend}: stopGradient is identity forward and exactly zero backward`, async () => {
    await initBackend(backend);
    const ops = tfOps();
    const x = rand([3, 4]);
    const xs = Float32Array.from(x.data);
    const sg = tfRun((t) => ops.stopGradient(t), [x], rand([3, 4]).data);
    assert.deepEqual([...sg.y], [...xs]);
    assert.ok(
      sg.grads[0].every((g) => Object.is(g, 0)),
      'gradient through stopGradient is exactly zero',
    );
    const ones = new Float64Array(12).fill(1);
    const both = tfRun((t) => ops.add(t, ops.stopGradient(t)), [x], ones);
    assert.deepEqual([...both.grads[0]], new Array(12).fill(1), 'd/dx (x + sg(x)) is exactly 1');
    // d/dx (x · sg(x)) = sg(x) = x: the blocked factor is still used as a value.
    const prod = tfRun((t) => ops.mul(t, ops.stopGradient(t)), [x], ones);
    assert.deepEqual([...prod.grads[0]], [...xs]);
    // Composed with the custom-gradient matMul: only the unblocked operand receives gradient.
    const a = rand([2, 3]),
      b = rand([3, 2]);
    const mm = tfRun(
      (u, v) => new TfOps({ matMul: 'tiled' }).matMul(ops.stopGradient(u), v),
      [a, b],
      new Float64Array(4).fill(1),
    );
    assert.ok(mm.grads[0].every((g) => g === 0));
    assert.ok(mm.grads[1].some((g) => g !== 0));
  });
}
