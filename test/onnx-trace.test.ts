import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import onnx from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { initBackend, tf } from '../src/engine/backend.js';
import { checkOnnxModel } from '../src/engine/onnx-check.js';
import { OnnxTracer, type TraceTensor } from '../src/engine/onnx-trace.js';
import type { Ops, Tensor } from '../src/engine/ops.js';
import { tfOps } from '../src/engine/tfjs-ops.js';
import { layerNorm, linear } from '../src/models/layers.js';
import { attentionMask, relativeAttention } from '../src/models/relative-attention.js';
import { REPO, tempDir } from './helpers.js';

// Every primitive is traced, run by onnxruntime and compared with TfOps on the same inputs: the
// tracer's shapes and op choices are right exactly when the two engines agree.

interface Arr {
  data: Float32Array;
  shape: number[];
}
type Weights = Map<string, Tensor>;
type Fn = (ops: Ops, xs: Tensor[], w: Weights) => Tensor | Tensor[];

// A decoded graph's messages are class instances with every repeated field present, which the
// generated interfaces leave optional.
interface DecodedGraph {
  node: { opType: string; input: string[]; output: string[]; attribute: onnx.onnx.AttributeProto[] }[];
  initializer: { name: string; rawData: Uint8Array }[];
  input: { name: string }[];
  output: { name: string }[];
}
const graphOf = (m: onnx.onnx.ModelProto) => m.graph as unknown as DecodedGraph;

const TOL = 1e-5;
let seed = 2024;
function rand(shape: number[], lo = -1, hi = 1): Arr {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return lo + ((seed >>> 8) / 2 ** 24) * (hi - lo);
  });
  return { data, shape };
}
const list = (y: Tensor | Tensor[]) => (Array.isArray(y) ? y : [y]);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function runTf(f: Fn, inputs: Arr[], weights: Map<string, Arr>): Arr[] {
  const ops = tfOps();
  let out: Arr[] = [];
  tf.tidy(() => {
    const xs = inputs.map((x, i) => ops.input(`x${i}`, x.data, x.shape));
    const w: Weights = new Map([...weights].map(([k, v]) => [k, ops.constant(v.data, v.shape)]));
    out = list(f(ops, xs, w)).map((t) => ({ shape: [...t.shape], data: ops.read(t as tf.Tensor) }));
  });
  return out;
}

function trace(
  f: Fn,
  inputs: Arr[],
  weights: Map<string, Arr>,
  graphName: string,
): { tracer: OnnxTracer; bytes: Uint8Array; shapes: number[][] } {
  const tracer = new OnnxTracer();
  const xs = inputs.map((x, i) => tracer.input(`x${i}`, x.data, x.shape));
  const w: Weights = new Map([...weights].map(([k, v]) => [k, tracer.param(k, v.data, v.shape)]));
  const ys = list(f(tracer, xs, w));
  ys.forEach((y, i) => tracer.output(`y${i}`, y as TraceTensor));
  return { tracer, bytes: tracer.toModel({ graphName }), shapes: ys.map((y) => [...y.shape]) };
}

function feedsOf(map: Map<string, Arr>): Record<string, ort.Tensor> {
  return Object.fromEntries([...map].map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)]));
}

async function runOrt(bytes: Uint8Array, feeds: Map<string, Arr>): Promise<Arr[]> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const r = await session.run(feedsOf(feeds));
    return session.outputNames.map((n) => ({ shape: r[n].dims.map(Number), data: r[n].data as Float32Array }));
  } finally {
    await session.release();
  }
}

/**
 * onnxruntime only warns when a declared shape disagrees with its own inference, so every recorded
 * intermediate is exposed as an extra graph output and its real shape compared with the tracer's.
 */
async function checkIntermediateShapes(what: string, tracer: OnnxTracer, bytes: Uint8Array): Promise<void> {
  const m = onnx.onnx.ModelProto.decode(bytes);
  const g = m.graph as onnx.onnx.GraphProto;
  g.output.push(...g.valueInfo);
  const session = await ort.InferenceSession.create(onnx.onnx.ModelProto.encode(m).finish());
  try {
    const r = await session.run(feedsOf(tracer.exampleFeeds()));
    for (const node of tracer.nodes) {
      if (r[node.output])
        assert.deepEqual(
          r[node.output].dims.map(Number),
          node.shape,
          `${what}: shape of ${node.primitive} ${node.op} ${node.output}`,
        );
    }
  } finally {
    await session.release();
  }
}

async function compare(what: string, inputs: Arr[], f: Fn, weights = new Map<string, Arr>()): Promise<OnnxTracer> {
  const expected = runTf(f, inputs, weights);
  const { tracer, bytes, shapes } = trace(f, inputs, weights, what.replace(/\W+/g, '_'));
  assert.deepEqual(checkOnnxModel(bytes), [], `${what}: checker`);
  const got = await runOrt(bytes, tracer.exampleFeeds());
  await checkIntermediateShapes(what, tracer, bytes);
  assert.equal(got.length, expected.length, `${what}: output count`);
  expected.forEach((e, i) => {
    assert.deepEqual(shapes[i], e.shape, `${what}: traced shape of output ${i}`);
    assert.deepEqual(got[i].shape, e.shape, `${what}: onnxruntime shape of output ${i}`);
    const d = maxAbsDiff(got[i].data, e.data);
    assert.ok(d <= TOL, `${what}: output ${i} differs by ${d}`);
  });
  return tracer;
}

test.before(async () => {
  await initBackend('cpu');
});

test('unary primitives, softmax, logSoftmax, scale, stopGradient', async () => {
  const x = rand([2, 3, 4], -2, 2);
  const pos = rand([2, 3, 4], 0.1, 3);
  const cases: [string, Arr, Fn][] = [
    ['neg', x, (o, [a]) => o.neg(a)],
    ['exp', x, (o, [a]) => o.exp(a)],
    ['log', pos, (o, [a]) => o.log(a)],
    ['sqrt', pos, (o, [a]) => o.sqrt(a)],
    ['tanh', x, (o, [a]) => o.tanh(a)],
    ['sigmoid', x, (o, [a]) => o.sigmoid(a)],
    ['relu', x, (o, [a]) => o.relu(a)],
    ['square', x, (o, [a]) => o.square(a)],
    ['scale', x, (o, [a]) => o.scale(a, -0.37)],
    ['stopGradient', x, (o, [a]) => o.stopGradient(a)],
    ['softmax', x, (o, [a]) => o.softmax(a)],
    ['logSoftmax', x, (o, [a]) => o.logSoftmax(a)],
    ['softmax 2-D', rand([3, 7], -4, 4), (o, [a]) => o.softmax(a)],
  ];
  for (const [what, input, f] of cases) await compare(what, [input], f);
});

test('add, sub, mul, div with numpy broadcasting', async () => {
  const pairs: [number[], number[]][] = [
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
    [[2, 3, 4], [4]],
    [
      [2, 1, 4],
      [3, 1],
    ],
    [[1], [2, 3]],
    [
      [3, 1, 5],
      [1, 4, 1],
    ],
    [[2, 3], []],
    [
      [1, 3, 1, 2],
      [2, 1, 4, 1],
    ],
  ];
  const fns: [string, Fn][] = [
    ['add', (o, [a, b]) => o.add(a, b)],
    ['sub', (o, [a, b]) => o.sub(a, b)],
    ['mul', (o, [a, b]) => o.mul(a, b)],
    ['div', (o, [a, b]) => o.div(a, b)],
  ];
  for (const [sa, sb] of pairs) {
    for (const [name, f] of fns) await compare(`${name} [${sa}] [${sb}]`, [rand(sa), rand(sb, 0.5, 2)], f);
  }
});

test('matMul: every transpose combination, 2-D and batched 3-D/4-D', async () => {
  const cases = [
    { batch: [], m: 3, k: 4, n: 5 },
    { batch: [3], m: 2, k: 5, n: 4 },
    { batch: [2, 3], m: 4, k: 3, n: 2 },
    { batch: [1], m: 6, k: 2, n: 3 },
  ];
  for (const { batch, m, k, n } of cases) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const a = rand([...batch, ...(tA ? [k, m] : [m, k])]);
        const b = rand([...batch, ...(tB ? [n, k] : [k, n])]);
        await compare(`matMul [${batch}] ${m}x${k}x${n} tA=${tA} tB=${tB}`, [a, b], (o, [x, y]) =>
          o.matMul(x, y, tA, tB),
        );
      }
    }
  }
  const t = new OnnxTracer();
  const other = new OnnxTracer();
  // Same auto name in both tracers: only identity tells them apart.
  assert.throws(
    () => t.matMul(t.constant(new Float32Array(6), [2, 3]), other.constant(new Float32Array(6), [3, 2])),
    /not a tensor of this tracer/,
  );
  assert.throws(
    () => t.matMul(t.constant(new Float32Array(6), [2, 3]), t.constant(new Float32Array(6), [2, 3])),
    /inner dimensions differ/,
  );
});

test('reshape, transpose, concat, slice, pad', async () => {
  const x = rand([2, 3, 4]);
  for (const shape of [[6, 4], [4, -1], [24], [2, 12, 1], [-1, 3, 2, 2]])
    await compare(`reshape [${shape}]`, [x], (o, [a]) => o.reshape(a, shape));
  for (const perm of [
    [2, 0, 1],
    [1, 0, 2],
    [0, 1, 2],
  ])
    await compare(`transpose [${perm}]`, [x], (o, [a]) => o.transpose(a, perm));
  await compare('transpose 4-D', [rand([2, 3, 4, 5])], (o, [a]) => o.transpose(a, [0, 2, 1, 3]));
  await compare('concat axis 1', [x, rand([2, 1, 4]), rand([2, 5, 4])], (o, xs) => o.concat(xs, 1));
  await compare('concat axis -1', [x, rand([2, 3, 2])], (o, xs) => o.concat(xs, -1));
  await compare('concat axis 0, one tensor', [x], (o, xs) => o.concat(xs, 0));
  for (const [begin, size] of [
    [
      [0, 0, 0],
      [2, 3, 4],
    ],
    [
      [1, 1, 2],
      [1, 2, 2],
    ],
    [
      [0, 2, 1],
      [-1, 1, -1],
    ],
  ]) {
    await compare(`slice [${begin}] [${size}]`, [x], (o, [a]) => o.slice(a, begin, size));
  }
  await compare('pad', [x], (o, [a]) =>
    o.pad(a, [
      [1, 0],
      [0, 2],
      [2, 1],
    ]),
  );
  await compare('sliceAt, start [1]', [x, { data: new Float32Array([1]), shape: [1] }], (o, [a, s]) =>
    o.sliceAt(a, 1, s, 2),
  );
  await compare('sliceAt, rank-0 start', [x, { data: new Float32Array([2]), shape: [] }], (o, [a, s]) =>
    o.sliceAt(a, 2, s, 2),
  );
  await compare('pad nothing', [x], (o, [a]) =>
    o.pad(a, [
      [0, 0],
      [0, 0],
      [0, 0],
    ]),
  );
});

test('sum, mean, max over several axes, keepDims true and false', async () => {
  const x = rand([2, 3, 4, 5], -3, 3);
  const axesList = [[0], [3], [1, 2], [0, 3], [-1], [2, 0], [0, 1, 2, 3], []];
  for (const kind of ['sum', 'mean', 'max'] as const) {
    for (const axes of axesList) {
      for (const keep of [true, false])
        await compare(`${kind} [${axes}] keep=${keep}`, [x], (o, [a]) => o[kind](a, axes, keep));
    }
    await compare(`${kind} default keepDims`, [x], (o, [a]) => o[kind](a, [1]));
  }
});

test('sliceAt: one traced graph serves every start, fed as data', async () => {
  const x = rand([2, 7, 3]);
  const build = <T extends Tensor>(o: Ops<T>, start: number, start2: number): T[] => {
    const xs = o.input('x', x.data, x.shape);
    const s = o.input('start', new Float32Array([start]), [1]);
    const s2 = o.input('start2', new Float32Array([start2]), [1]);
    return [o.sliceAt(xs, 1, s, 3), o.sliceAt(xs, -1, s2, 2), o.sliceAt(xs, 0, s2, 1)];
  };
  const tracer = new OnnxTracer();
  build(tracer, 0, 0).forEach((y, i) => tracer.output(`y${i}`, y));
  const bytes = tracer.toModel({ graphName: 'slice_at' });
  assert.deepEqual(checkOnnxModel(bytes), []);
  const session = await ort.InferenceSession.create(bytes);
  const seen = new Set<string>();
  for (const [start, start2] of [
    [0, 0],
    [2, 1],
    [4, 1],
    [3, 0],
  ]) {
    const expected = runTf((o) => build(o, start, start2), [], new Map());
    const feeds = new Map<string, Arr>([
      ['x', x],
      ['start', { data: new Float32Array([start]), shape: [1] }],
      ['start2', { data: new Float32Array([start2]), shape: [1] }],
    ]);
    const r = await session.run(feedsOf(feeds));
    expected.forEach((e, i) => {
      const got = r[`y${i}`];
      assert.deepEqual(got.dims.map(Number), e.shape);
      assert.ok(maxAbsDiff(got.data as Float32Array, e.data) <= TOL, `start ${start}/${start2}: output ${i}`);
    });
    seen.add(Array.from(r.y0.data as Float32Array).join(','));
  }
  assert.equal(seen.size, 4, 'each start selects different data');
  await session.release();
});

test('composition: layerNorm + linear, and relative attention, traced vs tfjs', async () => {
  const d = 4,
    hidden = 6;
  const w = new Map<string, Arr>([
    ['ln.g', rand([d], 0.5, 1.5)],
    ['ln.b', rand([d], -0.2, 0.2)],
    ['fc.w', rand([d, hidden])],
    ['fc.b', rand([hidden])],
  ]);
  await compare(
    'layerNorm + linear',
    [rand([2, 3, d], -2, 2)],
    (o, [x], p) => o.relu(linear(o, layerNorm(o, x, p.get('ln.g')!, p.get('ln.b')!), p.get('fc.w')!, p.get('fc.b')!)),
    w,
  );

  const B = 2,
    n = 3,
    K = 5,
    H = 2,
    dh = 3;
  const aw = new Map<string, Arr>([
    ['attn.wq', rand([d, H * dh], -0.5, 0.5)],
    ['attn.wk', rand([d, H * dh], -0.5, 0.5)],
    ['attn.wv', rand([d, H * dh], -0.5, 0.5)],
    ['attn.wr', rand([d, H * dh], -0.5, 0.5)],
    ['attn.u', rand([H, dh], -0.3, 0.3)],
    ['attn.v', rand([H, dh], -0.3, 0.3)],
    ['attn.wo', rand([H * dh, d], -0.5, 0.5)],
  ]);
  const mask = { data: attentionMask(B, n, K, (b, j) => !(b === 1 && j === 0)), shape: [B, 1, n, K] };
  const tracer = await compare(
    'relativeAttention',
    [rand([B, n, d]), rand([B, K, d]), mask],
    (o, [q, c, m], p) => {
      const g = (k: string) => p.get(`attn.${k}`)!;
      const { out, probs } = relativeAttention(
        o,
        { wq: g('wq'), wk: g('wk'), wv: g('wv'), wr: g('wr'), u: g('u'), v: g('v'), wo: g('wo') },
        q,
        c,
        m,
        { B, n, K, H, dh },
      );
      return [out, probs];
    },
    aw,
  );
  // The weights keep their names, so an exported graph's initializers line up with a checkpoint.
  for (const name of aw.keys()) assert.equal(tracer.initializers.get(name)?.isParam, true, name);
  assert.ok(
    tracer.nodes.some((nd) => nd.op === 'MatMul' && nd.shape.length === 3),
    'batched matmul recorded with its shape',
  );
});

test('outputs: the same tensor twice, an input passed straight through; pruning and metadata', async () => {
  await compare('same tensor twice', [rand([2, 3])], (o, [a]) => {
    const y = o.exp(a);
    return [y, y];
  });
  await compare('input as output', [rand([2, 3])], (o, [a]) => [a, o.neg(a)]);

  const t = new OnnxTracer();
  const x = t.input('x', rand([2, 3]).data, [2, 3]);
  t.input('unused', rand([1]).data, [1]);
  t.param('dead.w', rand([3, 3]).data, [3, 3]);
  const k1 = t.constant(new Float32Array([2, 3, 4]), [3]);
  const k2 = t.constant(new Float32Array([2, 3, 4]), [3]);
  assert.equal(k1.name, k2.name, 'identical constants share one initializer');
  t.exp(x); // a node no output depends on
  t.output('y', t.mul(x, k1));
  assert.throws(() => t.output('y', x), /already used/);
  const bytes = t.toModel({ graphName: 'g', docString: 'doc', metadata: { model: 'ct-tiny', step: '12' } });
  assert.deepEqual(checkOnnxModel(bytes), []);
  const m = onnx.onnx.ModelProto.decode(bytes);
  assert.equal(m.producerName, 'ctspeech');
  assert.equal(Number(m.irVersion), 8);
  assert.deepEqual(
    m.opsetImport.map((o) => [o.domain, Number(o.version)]),
    [['', 17]],
  );
  assert.deepEqual(
    m.metadataProps.map((p) => [p.key, p.value]),
    [
      ['model', 'ct-tiny'],
      ['step', '12'],
    ],
  );
  assert.deepEqual(
    graphOf(m).initializer.map((i) => i.name),
    [k1.name],
  );
  assert.deepEqual(
    graphOf(m).node.map((nd) => nd.opType),
    ['Mul', 'Identity'],
  );
  assert.deepEqual(
    graphOf(m).input.map((i) => i.name),
    ['x', 'unused'],
  );
  assert.deepEqual([...t.exampleFeeds().keys()], ['x', 'unused']);
});

test('read() while tracing throws a clear error', () => {
  const t = new OnnxTracer();
  const x = t.input('x', new Float32Array(4), [4]);
  assert.throws(() => t.read(t.softmax(x)), /not available while tracing/);
});

test('checkOnnxModel reports broken models', () => {
  const t = new OnnxTracer();
  const x = t.input('x', rand([2, 3]).data, [2, 3]);
  t.output('y', t.sum(t.mean(x, [1], true), [0]));
  const good = t.toModel({ graphName: 'g' });
  const broken = (edit: (m: onnx.onnx.ModelProto) => void) => {
    const m = onnx.onnx.ModelProto.decode(good);
    edit(m);
    return checkOnnxModel(onnx.onnx.ModelProto.encode(m).finish());
  };
  const has = (problems: string[], re: RegExp) =>
    assert.ok(
      problems.some((p) => re.test(p)),
      `expected ${re} in ${JSON.stringify(problems)}`,
    );
  has(
    broken((m) => {
      graphOf(m).node[0].input[0] = 'nowhere';
    }),
    /input nowhere is not defined/,
  );
  has(
    broken((m) => {
      graphOf(m).node.reverse();
    }),
    /not defined before use/,
  );
  has(
    broken((m) => {
      graphOf(m).node[0].output[0] = 'x';
    }),
    /x is defined twice/,
  );
  has(
    broken((m) => {
      graphOf(m).output[0].name = 'ghost';
    }),
    /ghost is never produced/,
  );
  has(
    broken((m) => {
      graphOf(m).node[0].opType = 'MyCustomOp';
    }),
    /not in the allow-list/,
  );
  has(
    broken((m) => {
      graphOf(m).initializer[0].rawData = new Uint8Array(3);
    }),
    /raw_data holds 3 bytes/,
  );
  has(
    broken((m) => {
      m.opsetImport = [];
    }),
    /no ai.onnx opset import/,
  );
  has(
    broken((m) => {
      graphOf(m).node[0].attribute.find((a) => a.name === 'keepdims')!.type =
        onnx.onnx.AttributeProto.AttributeType.FLOAT;
    }),
    /keepdims has type FLOAT/,
  );
  // ReduceMean's axes became an input only at opset 18: as an input at 17 onnxruntime rejects it.
  has(
    broken((m) => {
      graphOf(m).node[0].input.push(graphOf(m).initializer[0].name);
    }),
    /axes must be an attribute at opset 17/,
  );
  assert.deepEqual(checkOnnxModel(new Uint8Array([0xff, 0xff, 0xff])).length, 1);
});

test('an exported model runs in a fresh node process that imports only onnxruntime-node', async () => {
  const x = rand([2, 3, 4]);
  const f: Fn = (o, [a]) => [o.softmax(o.matMul(a, a, false, true)), o.sum(a, [2])];
  const expected = runTf(f, [x], new Map());
  const { bytes } = trace(f, [x], new Map(), 'standalone');
  const dir = tempDir();
  try {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, bytes);
    const script = `
      import * as ort from 'onnxruntime-node';
      const s = await ort.InferenceSession.create(process.env.MODEL);
      const x = JSON.parse(process.env.X);
      const r = await s.run({ x0: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) });
      console.log(JSON.stringify(s.outputNames.map((n) => ({ shape: r[n].dims, data: Array.from(r[n].data) }))));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, MODEL: file, X: JSON.stringify({ data: Array.from(x.data), shape: x.shape }) },
    });
    const got = JSON.parse(stdout.trim().split('\n').pop()!) as { shape: number[]; data: number[] }[];
    assert.equal(got.length, 2);
    got.forEach((g, i) => {
      assert.deepEqual(g.shape, expected[i].shape);
      assert.ok(maxAbsDiff(g.data, expected[i].data) <= TOL);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
