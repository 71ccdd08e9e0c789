import onnx from 'onnx-proto';

const P = onnx.onnx;
const A = P.AttributeProto.AttributeType;
const D = P.TensorProto.DataType;

/** The ai.onnx ops the tracer emits: anything else in an exported graph is a bug or a foreign graph. */
export const ALLOWED_OPS: ReadonlySet<string> = new Set([
  'MatMul',
  'Transpose',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Neg',
  'Exp',
  'Log',
  'Sqrt',
  'Tanh',
  'Sigmoid',
  'Relu',
  'Reshape',
  'Concat',
  'Slice',
  'Pad',
  'ReduceSum',
  'ReduceMean',
  'ReduceMax',
  'Softmax',
  'LogSoftmax',
  'Identity',
  'Cast',
  'Round',
  // most-used selection's comparisons (engine/top-rows.ts)
  'Sign',
  // the code embedding as a gather (Ops.embed); ScatterND is its gradient, in training graphs
  'ArgMax',
  'Gather',
  'ScatterND',
  // Ops.sample: the host sampler's float64 arithmetic in the graph (engine/traced-sampling.ts)
  'CumSum',
  'TopK',
  'GatherElements',
  'Expand',
  'Min',
  'Where',
  'Less',
  'LessOrEqual',
  'Greater',
  'Equal',
  'And',
  'Or',
  'Not',
  'IsNaN',
  'IsInf',
]);

/** The type each attribute we emit must carry (a wrong one is rejected by onnxruntime at load). */
const ATTRIBUTE_TYPES: Readonly<Record<string, number>> = {
  perm: A.INTS,
  axis: A.INT,
  axes: A.INTS,
  keepdims: A.INT,
  noop_with_empty_axes: A.INT,
  to: A.INT,
  mode: A.STRING,
  reduction: A.STRING,
  allowzero: A.INT,
  largest: A.INT,
  sorted: A.INT,
  select_last_index: A.INT,
  detect_negative: A.INT,
  detect_positive: A.INT,
};

/** Bytes per element in raw_data. */
const ELEM_BYTES: Readonly<Record<number, number>> = {
  [D.FLOAT]: 4,
  [D.UINT8]: 1,
  [D.INT8]: 1,
  [D.UINT16]: 2,
  [D.INT16]: 2,
  [D.INT32]: 4,
  [D.INT64]: 8,
  [D.BOOL]: 1,
  [D.FLOAT16]: 2,
  [D.DOUBLE]: 8,
  [D.UINT32]: 4,
  [D.UINT64]: 8,
  [D.BFLOAT16]: 2,
};

/** protobufjs decodes int64 fields as Long when long.js is installed, as numbers otherwise. */
export type Int64 = number | { toNumber(): number } | null | undefined;
export const num = (v: Int64): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());
const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

function checkAttribute(where: string, a: onnx.onnx.IAttributeProto, problems: string[]): void {
  const name = a.name ?? '';
  if (!name) problems.push(`${where}: attribute without a name`);
  const t = a.type ?? A.UNDEFINED;
  const want = ATTRIBUTE_TYPES[name];
  if (want !== undefined && t !== want)
    problems.push(`${where}: attribute ${name} has type ${A[t] ?? t}, expected ${A[want]}`);
  // The field matching the declared type must be the one that is set.
  const singular: Partial<Record<number, string>> = {
    [A.FLOAT]: 'f',
    [A.INT]: 'i',
    [A.STRING]: 's',
    [A.TENSOR]: 't',
    [A.GRAPH]: 'g',
  };
  const field = singular[t];
  if (t === A.UNDEFINED) problems.push(`${where}: attribute ${name} has no type`);
  else if (field && !has(a, field)) problems.push(`${where}: attribute ${name} is ${A[t]} but holds no ${field}`);
  for (const [type, f] of Object.entries(singular)) {
    if (type !== String(t) && f && has(a, f) && a[f as keyof onnx.onnx.IAttributeProto] != null) {
      problems.push(`${where}: attribute ${name} is ${A[t] ?? t} but sets field ${f}`);
    }
  }
}

function checkInitializer(t: onnx.onnx.ITensorProto, problems: string[]): void {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map((d) => num(d));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) problems.push(`initializer ${name}: bad dims [${dims}]`);
  const count = dims.reduce((p, d) => p * d, 1);
  const dtype = t.dataType ?? D.UNDEFINED;
  const size = ELEM_BYTES[dtype];
  if (!size) {
    problems.push(`initializer ${name}: unsupported data type ${dtype}`);
    return;
  }
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== count * size)
      problems.push(
        `initializer ${name}: raw_data holds ${t.rawData.length} bytes, dims [${dims}] need ${count * size}`,
      );
    return;
  }
  const typed =
    dtype === D.FLOAT ? t.floatData : dtype === D.INT64 ? t.int64Data : dtype === D.DOUBLE ? t.doubleData : t.int32Data;
  const held = typed?.length ?? 0;
  if (held !== count) problems.push(`initializer ${name}: holds ${held} values, dims [${dims}] need ${count}`);
}

function checkValueInfo(kind: string, v: onnx.onnx.IValueInfoProto, problems: string[]): void {
  const tt = v.type?.tensorType;
  if (!tt || !tt.elemType) problems.push(`${kind} ${v.name}: not a typed tensor`);
  else if (!ELEM_BYTES[tt.elemType]) problems.push(`${kind} ${v.name}: unsupported element type ${tt.elemType}`);
}

/**
 * Structural problems of a serialised model, empty when clean: what onnxruntime would reject at load,
 * found without it and with a message that names the offending node or tensor.
 */
export function checkOnnxModel(bytes: Uint8Array): string[] {
  let model: onnx.onnx.ModelProto;
  try {
    model = P.ModelProto.decode(bytes);
  } catch (e) {
    return [`not an ONNX ModelProto: ${(e as Error).message}`];
  }
  const problems: string[] = [];
  if (num(model.irVersion as Int64) <= 0) problems.push('ir_version is not set');
  const imports = model.opsetImport ?? [];
  const std = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = std ? num(std.version as Int64) : 0;
  if (!std || opset <= 0) problems.push('no ai.onnx opset import');
  for (const o of imports)
    if (o.domain && o.domain !== 'ai.onnx') problems.push(`opset import of non-standard domain ${o.domain}`);
  const g = model.graph;
  if (!g) return [...problems, 'model has no graph'];

  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (!name) problems.push(`${what} has an empty name`);
    else if (defined.has(name))
      problems.push(`${what} ${name} is defined twice (shadows an input, initializer or earlier output)`);
    else defined.add(name);
  };
  for (const v of g.input ?? []) {
    define(v.name ?? '', 'graph input');
    checkValueInfo('graph input', v, problems);
  }
  for (const t of g.initializer ?? []) {
    define(t.name ?? '', 'initializer');
    checkInitializer(t, problems);
  }

  (g.node ?? []).forEach((n, i) => {
    const op = n.opType ?? '';
    const where = `node ${i} (${op}${n.name ? ` ${n.name}` : ''})`;
    if (n.domain && n.domain !== 'ai.onnx') problems.push(`${where}: non-standard domain ${n.domain}`);
    if (!ALLOWED_OPS.has(op)) problems.push(`${where}: op ${op || '(none)'} is not in the allow-list`);
    // Optional inputs are left out as empty names; every named one must already exist.
    for (const inp of n.input ?? [])
      if (inp && !defined.has(inp)) problems.push(`${where}: input ${inp} is not defined before use`);
    for (const a of n.attribute ?? []) checkAttribute(where, a, problems);
    const attrs = new Set((n.attribute ?? []).map((a) => a.name));
    const inputs = (n.input ?? []).length;
    // The axes form moved from attribute to input at opset 13 for ReduceSum and at 18 for the others.
    const axesAsInput = op === 'ReduceSum' ? opset >= 13 : op.startsWith('Reduce') ? opset >= 18 : undefined;
    if (axesAsInput === true && attrs.has('axes')) problems.push(`${where}: axes must be an input at opset ${opset}`);
    if (axesAsInput === false && inputs > 1) problems.push(`${where}: axes must be an attribute at opset ${opset}`);
    if ((n.output ?? []).length === 0) problems.push(`${where}: no outputs`);
    for (const out of n.output ?? []) if (out) define(out, `${where}: output`);
  });

  const outNames = new Set<string>();
  for (const v of g.output ?? []) {
    const name = v.name ?? '';
    if (outNames.has(name)) problems.push(`graph output ${name} is listed twice`);
    outNames.add(name);
    if (!defined.has(name)) problems.push(`graph output ${name} is never produced`);
    checkValueInfo('graph output', v, problems);
  }
  if (outNames.size === 0) problems.push('graph has no outputs');
  return problems;
}
