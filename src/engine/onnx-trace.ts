import onnx from 'onnx-proto';
import type { Ops, Tensor } from './ops.js';
import type { SamplingOptions } from './sampling.js';
import { tracedSample } from './traced-sampling.js';
import { tracedTopRows } from './top-rows.js';

/** A traced value: its static shape and the graph name that carries it. */
export interface TraceTensor extends Tensor {
  readonly shape: readonly number[];
  readonly name: string;
}

/** float64 and bool appear only inside composite primitives (in-graph sampling); inputs and outputs are float32. */
export type TraceDType = 'float32' | 'int64' | 'float64' | 'bool';

/** Attributes as plain values: an integer is INT, an integer list INTS, a string STRING (no floats are emitted). */
export type TraceAttr = number | readonly number[] | string;

/**
 * One recorded node, kept as plain data so a later reverse-mode pass (docs/engines.md) can walk
 * the graph backwards. `primitive` names the Ops method that emitted it: stopGradient and an output's
 * Identity are the same ONNX op with different derivatives.
 */
export interface TraceNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: Readonly<Record<string, TraceAttr>>;
  readonly shape: readonly number[];
  readonly dtype: TraceDType;
  readonly primitive: string;
  /** outputs ONNX requires but nothing reads (TopK's indices when only its values are wanted) */
  readonly unused?: readonly string[];
}

export interface TraceInitializer {
  readonly name: string;
  readonly dtype: TraceDType;
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array | Float64Array;
  /** Model weights (named by the caller) rather than constants the tracer made up. */
  readonly isParam: boolean;
}

export interface ToModelOptions {
  graphName: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

const P = onnx.onnx;
const ELEM = {
  float32: P.TensorProto.DataType.FLOAT,
  int64: P.TensorProto.DataType.INT64,
  float64: P.TensorProto.DataType.DOUBLE,
  bool: P.TensorProto.DataType.BOOL,
} as const;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const numel = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

function checkDims(what: string, shape: readonly number[]): number[] {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${what}: bad shape [${shape}]`);
  return [...shape];
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(Number.isInteger(a) && a >= 0 && a < rank)) throw new Error(`${what}: axis ${axis} outside rank ${rank}`);
  return a;
}

/** numpy broadcasting, as tfjs applies it to add/sub/mul/div. */
function broadcast(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Raw little-endian bytes, as TensorProto.raw_data requires whatever the host order. */
function rawBytes(data: Float32Array | BigInt64Array | Float64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else if (data instanceof Float64Array) data.forEach((v, i) => view.setFloat64(i * 8, v, true));
  else data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  return out;
}

type InitData = Float32Array | BigInt64Array | Float64Array;

function contentKey(dtype: TraceDType, dims: readonly number[], data: InitData): string {
  // FNV-1a over the bytes: cheap enough for every constant; equal keys are confirmed byte by byte.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${dtype}[${dims}]#${(h >>> 0).toString(16)}`;
}

function sameBytes(a: InitData, b: InitData): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function valueInfo(name: string, dtype: TraceDType, shape: readonly number[]): onnx.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: ELEM[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

function attribute(name: string, v: TraceAttr): onnx.onnx.IAttributeProto {
  const T = P.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer`);
    return { name, type: T.INT, i: v };
  }
  return { name, type: T.INTS, ints: [...v] };
}

/**
 * Ops that record an ONNX graph (ai.onnx, opset 17) instead of computing. Shapes are static and
 * computed here, so a model that runs under TfOps traces to a graph with the same shapes; only the
 * values of `input`s (and the scalar offsets of sliceAt) vary between runs of the exported graph.
 */
export class OnnxTracer implements Ops<TraceTensor> {
  readonly name = 'onnx-trace';
  readonly nodes: TraceNode[] = [];
  readonly initializers = new Map<string, TraceInitializer>();
  readonly inputs: { name: string; shape: readonly number[] }[] = [];
  readonly outputs: { name: string; shape: readonly number[] }[] = [];

  private readonly values = new Map<string, { shape: readonly number[]; dtype: TraceDType }>();
  private readonly feeds = new Map<string, { data: Float32Array; shape: number[] }>();
  private readonly byContent = new Map<string, string[]>();
  // By identity, not name: another tracer's tensors carry the same auto names.
  private readonly issued = new WeakSet<TraceTensor>();
  private counter = 0;

  // ---- graph sources and sinks

  constant(data: Float32Array, shape: readonly number[]): TraceTensor {
    return this.tensorFor(this.autoInitializer('float32', checkDims('constant', shape), Float32Array.from(data)));
  }

  /** A model weight: an initializer under the caller's name, so exported weights keep their names. */
  param(name: string, data: Float32Array, shape: readonly number[]): TraceTensor {
    const dims = checkDims(`param ${name}`, shape);
    if (data.length !== numel(dims)) throw new Error(`param ${name}: ${data.length} values for shape [${dims}]`);
    this.claim(name, dims, 'float32');
    this.initializers.set(name, { name, dtype: 'float32', dims, data: Float32Array.from(data), isParam: true });
    return this.tensorFor(name);
  }

  input(name: string, data: Float32Array, shape: readonly number[]): TraceTensor {
    const dims = checkDims(`input ${name}`, shape);
    if (data.length !== numel(dims)) throw new Error(`input ${name}: ${data.length} values for shape [${dims}]`);
    this.claim(name, dims, 'float32');
    this.inputs.push({ name, shape: dims });
    this.feeds.set(name, { data: Float32Array.from(data), shape: dims });
    return this.tensorFor(name);
  }

  /** Always through an Identity: the graph output gets exactly `name`, and one tensor may leave under several. */
  output(name: string, t: TraceTensor): void {
    const src = this.check(t, `output ${name}`);
    if (src.dtype !== 'float32') throw new Error(`output ${name}: only float32 tensors are outputs`);
    this.claim(name, t.shape, 'float32');
    this.nodes.push({
      op: 'Identity',
      inputs: [t.name],
      output: name,
      attrs: {},
      shape: [...t.shape],
      dtype: 'float32',
      primitive: 'output',
    });
    this.outputs.push({ name, shape: [...t.shape] });
  }

  /** The data each `input` was traced with: a ready feed for running the exported graph. */
  exampleFeeds(): Map<string, { data: Float32Array; shape: number[] }> {
    return new Map(this.feeds);
  }

  read(x: TraceTensor): Float32Array {
    throw new Error(
      `read(${x.name}): values are not available while tracing; ` +
        'a data-dependent decision (such as most-used compression) cannot be exported',
    );
  }

  // ---- elementwise

  matMul(a: TraceTensor, b: TraceTensor, transposeA = false, transposeB = false): TraceTensor {
    this.check(a, 'matMul');
    this.check(b, 'matMul');
    const r = a.shape.length;
    const bad = (why: string) =>
      new Error(`matMul: ${why} (a [${a.shape}]${transposeA ? 'ᵀ' : ''}, b [${b.shape}]${transposeB ? 'ᵀ' : ''})`);
    if (r < 2 || b.shape.length !== r) throw bad('operands must have the same rank, at least 2');
    for (let i = 0; i < r - 2; i++) if (a.shape[i] !== b.shape[i]) throw bad('leading dimensions must match');
    const x = transposeA ? this.swapLast(a, 'matMul') : a;
    const y = transposeB ? this.swapLast(b, 'matMul') : b;
    if (x.shape[r - 1] !== y.shape[r - 2]) throw bad(`inner dimensions differ: ${x.shape[r - 1]} vs ${y.shape[r - 2]}`);
    return this.node('MatMul', [x, y], [...x.shape.slice(0, r - 1), y.shape[r - 1]], 'matMul');
  }
  add(a: TraceTensor, b: TraceTensor): TraceTensor {
    return this.binary('Add', a, b, 'add');
  }
  sub(a: TraceTensor, b: TraceTensor): TraceTensor {
    return this.binary('Sub', a, b, 'sub');
  }
  mul(a: TraceTensor, b: TraceTensor): TraceTensor {
    return this.binary('Mul', a, b, 'mul');
  }
  div(a: TraceTensor, b: TraceTensor): TraceTensor {
    return this.binary('Div', a, b, 'div');
  }
  scale(x: TraceTensor, s: number): TraceTensor {
    // A rank-0 factor, as tfjs's tf.scalar: broadcasting leaves x's shape unchanged.
    return this.binary('Mul', x, this.constant(new Float32Array([s]), []), 'scale');
  }
  neg(x: TraceTensor): TraceTensor {
    return this.unary('Neg', x, 'neg');
  }
  exp(x: TraceTensor): TraceTensor {
    return this.unary('Exp', x, 'exp');
  }
  log(x: TraceTensor): TraceTensor {
    return this.unary('Log', x, 'log');
  }
  sqrt(x: TraceTensor): TraceTensor {
    return this.unary('Sqrt', x, 'sqrt');
  }
  tanh(x: TraceTensor): TraceTensor {
    return this.unary('Tanh', x, 'tanh');
  }
  sigmoid(x: TraceTensor): TraceTensor {
    return this.unary('Sigmoid', x, 'sigmoid');
  }
  relu(x: TraceTensor): TraceTensor {
    return this.unary('Relu', x, 'relu');
  }
  // Pow(x, 2), not Mul(x, x): onnxruntime fuses a layer norm written with Pow into one kernel.
  square(x: TraceTensor): TraceTensor {
    return this.binary('Pow', x, this.constant(new Float32Array([2]), []), 'square');
  }

  // ---- shapes

  reshape(x: TraceTensor, shape: readonly number[]): TraceTensor {
    this.check(x, 'reshape');
    const known = numel(shape.filter((d) => d !== -1));
    const free = shape.filter((d) => d === -1).length;
    const dims = shape.map((d) => (d === -1 ? numel(x.shape) / known : d));
    if (free > 1 || !dims.every((d) => Number.isInteger(d) && d >= 0) || numel(dims) !== numel(x.shape)) {
      throw new Error(`reshape: [${x.shape}] cannot become [${shape}]`);
    }
    // A reshape to the same shape is no node at all: each one is a kernel launch (and a copy of a graph input).
    if (dims.length === x.shape.length && dims.every((d, i) => d === x.shape[i])) return x;
    // ONNX Reshape reads a 0 as "copy that input dim" unless allowzero is set (opset 14+).
    const attrs: Record<string, TraceAttr> = dims.includes(0) ? { allowzero: 1 } : {};
    return this.node('Reshape', [x, this.int64s(dims)], dims, 'reshape', attrs);
  }

  transpose(x: TraceTensor, perm: readonly number[]): TraceTensor {
    this.check(x, 'transpose');
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((p, q) => p - q).some((p, i) => p !== i))
      throw new Error(`transpose: [${perm}] is not a permutation of rank ${r}`);
    return this.node(
      'Transpose',
      [x],
      perm.map((p) => x.shape[p]),
      'transpose',
      { perm: [...perm] },
    );
  }

  concat(xs: readonly TraceTensor[], axis: number): TraceTensor {
    if (xs.length === 0) throw new Error('concat: no tensors');
    xs.forEach((x) => this.check(x, 'concat'));
    const r = xs[0].shape.length;
    const ax = normAxis(axis, r, 'concat');
    for (const x of xs) {
      if (x.shape.length !== r || x.shape.some((d, i) => i !== ax && d !== xs[0].shape[i]))
        throw new Error(`concat: [${x.shape}] does not match [${xs[0].shape}] off axis ${ax}`);
    }
    const shape = xs[0].shape.map((d, i) => (i === ax ? xs.reduce((s, x) => s + x.shape[ax], 0) : d));
    return this.node('Concat', xs, shape, 'concat', { axis: ax });
  }

  slice(x: TraceTensor, begin: readonly number[], size: readonly number[]): TraceTensor {
    this.check(x, 'slice');
    const r = x.shape.length;
    if (begin.length !== r || size.length !== r)
      throw new Error(`slice: begin [${begin}] / size [${size}] do not match rank ${r}`);
    const len = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
    if (begin.some((b, i) => !(b >= 0 && len[i] >= 0 && b + len[i] <= x.shape[i])))
      throw new Error(`slice: begin [${begin}] size [${size}] outside [${x.shape}]`);
    const axes = x.shape.map((_, i) => i);
    return this.node(
      'Slice',
      [x, this.int64s(begin), this.int64s(begin.map((b, i) => b + len[i])), this.int64s(axes)],
      len,
      'slice',
    );
  }

  pad(x: TraceTensor, paddings: readonly [number, number][]): TraceTensor {
    this.check(x, 'pad');
    if (paddings.length !== x.shape.length || paddings.flat().some((p) => !(Number.isInteger(p) && p >= 0)))
      throw new Error(`pad: paddings ${JSON.stringify(paddings)} do not fit [${x.shape}]`);
    // ONNX orders pads as all begins then all ends; no constant_value input means zero.
    const pads = [...paddings.map(([lo]) => lo), ...paddings.map(([, hi]) => hi)];
    return this.node(
      'Pad',
      [x, this.int64s(pads)],
      x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]),
      'pad',
      { mode: 'constant' },
    );
  }

  sliceAt(x: TraceTensor, axis: number, start: TraceTensor, size: number): TraceTensor {
    this.check(x, 'sliceAt');
    this.check(start, 'sliceAt');
    const ax = normAxis(axis, x.shape.length, 'sliceAt');
    if (numel(start.shape) !== 1) throw new Error(`sliceAt: start must hold one value, got [${start.shape}]`);
    if (!(Number.isInteger(size) && size >= 0 && size <= x.shape[ax]))
      throw new Error(`sliceAt: size ${size} outside axis ${ax} of length ${x.shape[ax]}`);
    const s1 = start.shape.length === 1 ? start : this.reshape(start, [1]);
    // Round first: Cast truncates, and TfOps rounds (a position computed in float may be 4.9999995).
    const rounded = this.node('Round', [s1], [1], 'sliceAt');
    const starts = this.node('Cast', [rounded], [1], 'sliceAt', { to: ELEM.int64 }, 'int64');
    const ends = this.node('Add', [starts, this.int64s([size])], [1], 'sliceAt', {}, 'int64');
    // ONNX Slice clamps out-of-range starts where TfOps throws: callers must keep start + size in range.
    return this.node(
      'Slice',
      [x, starts, ends, this.int64s([ax])],
      x.shape.map((d, i) => (i === ax ? size : d)),
      'sliceAt',
    );
  }

  // ---- reductions

  sum(x: TraceTensor, axes: readonly number[], keepDims = false): TraceTensor {
    return this.reduce('ReduceSum', x, axes, keepDims, 'sum');
  }
  mean(x: TraceTensor, axes: readonly number[], keepDims = false): TraceTensor {
    return this.reduce('ReduceMean', x, axes, keepDims, 'mean');
  }
  max(x: TraceTensor, axes: readonly number[], keepDims = false): TraceTensor {
    return this.reduce('ReduceMax', x, axes, keepDims, 'max');
  }
  // Opset 13+ Softmax normalises along `axis` alone (before 13 it flattened everything from axis on).
  softmax(x: TraceTensor): TraceTensor {
    return this.unary('Softmax', x, 'softmax', { axis: -1 });
  }
  logSoftmax(x: TraceTensor): TraceTensor {
    return this.unary('LogSoftmax', x, 'logSoftmax', { axis: -1 });
  }

  stopGradient(x: TraceTensor): TraceTensor {
    return this.unary('Identity', x, 'stopGradient');
  }

  embed(oneHot: TraceTensor, table: TraceTensor): TraceTensor {
    this.check(oneHot, 'embed');
    this.check(table, 'embed');
    const [N, V] = oneHot.shape;
    const d = table.shape[1];
    if (oneHot.shape.length !== 2 || table.shape.length !== 2 || table.shape[0] !== V)
      throw new Error(`embed: one-hot [${oneHot.shape}] rows of a table [${table.shape}]`);
    // A gather (its gradient a scatter-add, engine/onnx-grad.ts) costs N x d where one-hot x table
    // costs N x V x d; the row's sum keeps a zero row's embedding zero, as the product would.
    const codes = this.node('ArgMax', [oneHot], [N], 'embed', { axis: 1, keepdims: 0 }, 'int64');
    const rows = this.node('Gather', [table, codes], [N, d], 'embed', { axis: 0 });
    return this.mul(rows, this.sum(oneHot, [1], true));
  }

  sample(logits: TraceTensor, draws: TraceTensor, opts: SamplingOptions): TraceTensor {
    this.check(logits, 'sample');
    this.check(draws, 'sample');
    return tracedSample(this, logits, draws, opts);
  }

  topRows(x: TraceTensor, score: TraceTensor, m: number): TraceTensor {
    this.check(x, 'topRows');
    this.check(score, 'topRows');
    const [B, n] = score.shape;
    if (x.shape.length !== 3 || x.shape[0] !== B || x.shape[1] !== n || !(m >= 0 && m <= n))
      throw new Error(`topRows: ${m} rows of [${x.shape}] by scores [${score.shape}]`);
    return tracedTopRows(this, x, score, m);
  }

  // ---- for the reverse pass (engine/onnx-grad.ts)

  /** The tensor a node output, initializer or graph input is known by. */
  tensorNamed(name: string): TraceTensor {
    if (!this.values.has(name)) throw new Error(`no traced value named ${name}`);
    return this.tensorFor(name);
  }

  /**
   * An ONNX node outside the Ops vocabulary (Expand, Sign) for a derivative or a composite primitive;
   * `primitive` names what emitted it.
   */
  emit(
    op: string,
    inputs: readonly TraceTensor[],
    shape: readonly number[],
    attrs: Record<string, TraceAttr> = {},
    primitive = 'grad',
    dtype: TraceDType = 'float32',
  ) {
    inputs.forEach((x) => this.check(x, `${primitive} ${op}`));
    return this.node(op, inputs, shape, primitive, attrs, dtype);
  }

  /** A constant int64 tensor (shapes, axes, pads): a vector unless `shape` says otherwise ([] for a scalar). */
  int64Constant(values: readonly number[], shape: readonly number[] = [values.length]): TraceTensor {
    const dims = checkDims('int64 constant', shape);
    return this.tensorFor(this.autoInitializer('int64', dims, BigInt64Array.from(values.map((v) => BigInt(v)))));
  }

  /** A constant float64 tensor (in-graph sampling works in float64, as the host sampler does). */
  float64Constant(values: readonly number[], shape: readonly number[] = [values.length]): TraceTensor {
    return this.tensorFor(
      this.autoInitializer('float64', checkDims('float64 constant', shape), Float64Array.from(values)),
    );
  }

  /** A node with two outputs of which only the first is read (TopK's values without its indices). */
  emitFirstOf(
    op: string,
    inputs: readonly TraceTensor[],
    shape: readonly number[],
    attrs: Record<string, TraceAttr>,
    primitive: string,
    dtype: TraceDType,
    second: { shape: readonly number[]; dtype: TraceDType },
  ): TraceTensor {
    inputs.forEach((x) => this.check(x, `${primitive} ${op}`));
    const unused = this.fresh('_u');
    this.claim(unused, second.shape, second.dtype);
    const output = this.fresh('_t');
    this.claim(output, shape, dtype);
    this.nodes.push({
      op,
      inputs: inputs.map((t) => t.name),
      output,
      attrs,
      shape: [...shape],
      dtype,
      primitive,
      unused: [unused],
    });
    return this.tensorFor(output);
  }

  // ---- serialisation

  /** The ModelProto of everything the outputs depend on; nodes and initializers nothing reads are dropped. */
  toModel(opts: ToModelOptions): Uint8Array {
    if (this.outputs.length === 0) throw new Error('toModel: no outputs marked');
    const needed = new Set(this.outputs.map((o) => o.name));
    const kept: TraceNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!needed.has(n.output)) continue;
      kept.push(n);
      n.inputs.forEach((name) => needed.add(name));
    }
    kept.reverse();
    const outputNames = new Set(this.outputs.map((o) => o.name));
    let k = 0;
    const graph: onnx.onnx.IGraphProto = {
      name: opts.graphName,
      node: kept.map((n) => ({
        name: `${n.primitive}_${k++}`,
        opType: n.op,
        input: [...n.inputs],
        output: [n.output, ...(n.unused ?? [])],
        attribute: Object.entries(n.attrs).map(([name, v]) => attribute(name, v)),
      })),
      initializer: [...this.initializers.values()]
        .filter((t) => needed.has(t.name))
        .map((t) => ({
          name: t.name,
          dataType: ELEM[t.dtype],
          dims: [...t.dims],
          rawData: rawBytes(t.data),
        })),
      // Every input stays, used or not: callers feed all of exampleFeeds(), and onnxruntime rejects unknown feeds.
      input: this.inputs.map((t) => valueInfo(t.name, 'float32', t.shape)),
      output: this.outputs.map((t) => valueInfo(t.name, 'float32', t.shape)),
      // Our shapes as value_info: onnxruntime's own inference then checks them instead of trusting them.
      valueInfo: kept.filter((n) => !outputNames.has(n.output)).map((n) => valueInfo(n.output, n.dtype, n.shape)),
    };
    const model: onnx.onnx.IModelProto = {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'ctspeech',
      docString: opts.docString ?? '',
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph,
    };
    return P.ModelProto.encode(P.ModelProto.create(model)).finish();
  }

  // ---- internals

  private check(t: TraceTensor, what: string): { shape: readonly number[]; dtype: TraceDType } {
    const v = this.issued.has(t) ? this.values.get(t.name) : undefined;
    if (!v) throw new Error(`${what}: not a tensor of this tracer (${t && (t as { name?: unknown }).name})`);
    return v;
  }

  private claim(name: string, shape: readonly number[], dtype: TraceDType): void {
    if (!name) throw new Error('empty tensor name');
    if (this.values.has(name)) throw new Error(`name ${name} is already used in this graph`);
    this.values.set(name, { shape: [...shape], dtype });
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}${this.counter++}`;
    while (this.values.has(name));
    return name;
  }

  private tensorFor(name: string): TraceTensor {
    const t = { name, shape: this.values.get(name)!.shape };
    this.issued.add(t);
    return t;
  }

  private autoInitializer(dtype: TraceDType, dims: number[], data: InitData): string {
    if (data.length !== numel(dims)) throw new Error(`constant: ${data.length} values for shape [${dims}]`);
    const key = contentKey(dtype, dims, data);
    const same = this.byContent.get(key) ?? [];
    for (const name of same) if (sameBytes(this.initializers.get(name)!.data, data)) return name;
    const name = this.fresh(dtype === 'float32' ? '_c' : dtype === 'int64' ? '_i' : '_d');
    this.claim(name, dims, dtype);
    this.initializers.set(name, { name, dtype, dims, data, isParam: false });
    this.byContent.set(key, [...same, name]);
    return name;
  }

  private int64s(values: readonly number[]): TraceTensor {
    return this.tensorFor(
      this.autoInitializer('int64', [values.length], BigInt64Array.from(values.map((v) => BigInt(v)))),
    );
  }

  private node(
    op: string,
    inputs: readonly TraceTensor[],
    shape: readonly number[],
    primitive: string,
    attrs: Record<string, TraceAttr> = {},
    dtype: TraceDType = 'float32',
  ): TraceTensor {
    const output = this.fresh('_t');
    this.claim(output, shape, dtype);
    this.nodes.push({ op, inputs: inputs.map((t) => t.name), output, attrs, shape: [...shape], dtype, primitive });
    return this.tensorFor(output);
  }

  private unary(op: string, x: TraceTensor, primitive: string, attrs: Record<string, TraceAttr> = {}): TraceTensor {
    this.check(x, primitive);
    return this.node(op, [x], x.shape, primitive, attrs);
  }

  private binary(op: string, a: TraceTensor, b: TraceTensor, primitive: string): TraceTensor {
    this.check(a, primitive);
    this.check(b, primitive);
    return this.node(op, [a, b], broadcast(a.shape, b.shape), primitive);
  }

  private swapLast(x: TraceTensor, primitive: string): TraceTensor {
    const r = x.shape.length;
    const perm = x.shape.map((_, i) => i);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return this.node(
      'Transpose',
      [x],
      perm.map((p) => x.shape[p]),
      primitive,
      { perm },
    );
  }

  private reduce(
    op: string,
    x: TraceTensor,
    axes: readonly number[],
    keepDims: boolean,
    primitive: string,
  ): TraceTensor {
    this.check(x, primitive);
    const r = x.shape.length;
    const ax = [...new Set(axes.map((a) => normAxis(a, r, primitive)))].sort((p, q) => p - q);
    // tfjs reduces nothing for []; ONNX would reduce everything (noop_with_empty_axes defaults to 0).
    if (ax.length === 0) return this.node('Identity', [x], x.shape, primitive);
    const shape = keepDims
      ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !ax.includes(i));
    const keepdims = keepDims ? 1 : 0;
    // Opset 17: ReduceSum takes axes as an input (since 13); ReduceMean/ReduceMax still as an attribute (until 18).
    if (op === 'ReduceSum') return this.node(op, [x, this.int64s(ax)], shape, primitive, { keepdims });
    return this.node(op, [x], shape, primitive, { axes: ax, keepdims });
  }
}
