/**
 * `Ops.sample` as ONNX nodes: the host sampler's arithmetic (engine/sampling.ts) step for step in
 * float64, so a graph that generates many samples per call draws the codes the per-sample loop
 * would. Each choice of the host is matched by a count over a monotone sequence:
 *  - the host walks the cumulative weights and returns the first code past u x total; CumSum is the
 *    same sequential float64 sum, and that code is the number of cumulative weights <= u x total;
 *  - top-p stops at the first sorted prefix whose mass reaches p x (top-k mass): the number of
 *    prefixes below it, plus one;
 *  - codes tied with the smallest kept weight are kept lowest code first: a running count of ties.
 */
import type { OnnxTracer, TraceAttr, TraceDType, TraceTensor } from './onnx-trace.js';
import { GREEDY_BELOW, type SamplingOptions } from './sampling.js';

export function tracedSample(
  tr: OnnxTracer,
  logits: TraceTensor,
  draws: TraceTensor,
  opts: SamplingOptions,
): TraceTensor {
  const [B, V] = logits.shape;
  if (logits.shape.length !== 2 || draws.shape.length !== 2 || draws.shape[0] !== B || draws.shape[1] !== 2)
    throw new Error(`sample: logits [${logits.shape}] need draws [${B}, 2], got [${draws.shape}]`);
  // Every node here runs once per generated sample: the fewer, the faster a block of samples.
  const b = builders(tr, B);
  const { node, f64, sum, col } = b;
  const greedy = opts.temperature < GREEDY_BELOW;

  let z = f64(logits);
  if (!greedy && opts.temperature !== 1) z = node('Mul', [z, tr.float64Constant([1 / opts.temperature])], [B, V]);
  const max = node('ReduceMax', [z], col, 'float64', { axes: [1], keepdims: 1 });
  const w = node('Exp', [node('Sub', [z, max], [B, V])], [B, V]);
  // NaN or +Infinity anywhere, or nothing but -Infinity, makes z - max NaN somewhere and so the sum
  // NaN: exactly the rows the host sampler refuses. Those rows get code -1, which no one-hot matches.
  let code: TraceTensor; // float64 [B, 1]
  let unsampleable: TraceTensor;
  if (greedy) {
    unsampleable = node('IsNaN', [sum(w)], col, 'bool');
    code = f64(node('ArgMax', [logits], col, 'int64', { axis: 1, keepdims: 1 }));
  } else {
    const k = opts.topK ?? V;
    const p = opts.topP ?? 1;
    const truncated = k < V || p < 1;
    const kept = truncated ? truncate(tr, b, w, k, p, V) : w;
    const cum = b.cumsum(kept);
    const total = b.columns(cum, V - 1, 1);
    // Truncation zeroes codes whatever their weight: look for NaN before it.
    unsampleable = node('IsNaN', [truncated ? sum(w) : total], col, 'bool');
    // u = (hi * 2^16 + lo) / 2^32, exact: both halves have 16 bits.
    const scale = tr.float64Constant([2 ** -16, 2 ** -32], [2, 1]);
    const u = node('MatMul', [f64(draws), scale], col);
    const target = node('Mul', [u, total], col);
    // The first code whose running sum passes u*total: the count of running sums not past it. u < 1,
    // so u*total < total and the count stays below V (the host's "last code" fallback never fires).
    code = sum(f64(node('LessOrEqual', [cum, target], [B, V], 'bool')));
  }
  const numbered = node('Where', [unsampleable, tr.float64Constant([-1]), code], col);
  const codes = tr.float64Constant(
    Array.from({ length: V }, (_, c) => c),
    [1, V],
  );
  return node('Cast', [node('Equal', [numbered, codes], [B, V], 'bool')], [B, V], 'float32', { to: 1 });
}

/** Node makers shared by the sampler's parts, for B rows; float64 unless told otherwise. */
function builders(tr: OnnxTracer, B: number) {
  const node = (
    op: string,
    inputs: TraceTensor[],
    shape: readonly number[],
    dtype: TraceDType = 'float64',
    attrs: Record<string, TraceAttr> = {},
  ) => tr.emit(op, inputs, shape, attrs, 'sample', dtype);
  const col = [B, 1];
  const axis1 = tr.int64Constant([1]);
  return {
    node,
    col,
    f64: (x: TraceTensor) => node('Cast', [x], x.shape, 'float64', { to: 11 }),
    /** per row, keeping the axis: [B, 1] */
    sum: (x: TraceTensor) => node('ReduceSum', [x, axis1], col, 'float64', { keepdims: 1 }),
    /** running sums along each row, in order: the host's `cum +=` */
    cumsum: (x: TraceTensor) => node('CumSum', [x, tr.int64Constant([1], [])], x.shape),
    /** columns from..from+count-1 of x [B, *] */
    columns: (x: TraceTensor, from: number, count: number) =>
      node('Slice', [x, tr.int64Constant([from]), tr.int64Constant([from + count]), axis1], [B, count]),
  };
}

/** The weights `w` [B, V] with all but the host's kept codes zeroed (top-k, then top-p within it). */
function truncate(
  tr: OnnxTracer,
  b: ReturnType<typeof builders>,
  w: TraceTensor,
  k: number,
  p: number,
  V: number,
): TraceTensor {
  const { node, f64, sum, col } = b;
  const B = col[0];
  // Descending weights, as the host reads its ascending sort from the top.
  const sorted = tr.emitFirstOf(
    'TopK',
    [w, tr.int64Constant([V])],
    [B, V],
    { axis: 1, largest: 1, sorted: 1 },
    'sample',
    'float64',
    {
      shape: [B, V],
      dtype: 'int64',
    },
  );
  let kept: TraceTensor = tr.float64Constant([k]); // [1], broadcast over rows
  if (p < 1) {
    const cum = b.cumsum(b.columns(sorted, 0, k));
    const target = node('Mul', [b.columns(cum, k - 1, 1), tr.float64Constant([p])], col);
    const below = sum(f64(node('Less', [cum, target], [B, k], 'bool')));
    kept = node('Min', [node('Add', [below, tr.float64Constant([1])], col), tr.float64Constant([k])], col);
  }
  const keptCol = kept.shape.length === 2 ? kept : node('Expand', [kept, tr.int64Constant(col)], col);
  const at = node('Cast', [node('Sub', [keptCol, tr.float64Constant([1])], col)], col, 'int64', { to: 7 });
  const floor = node('GatherElements', [sorted, at], col, 'float64', { axis: 1 });
  const above = node('Greater', [w, floor], [B, V], 'bool');
  const tied = node('Equal', [w, floor], [B, V], 'bool');
  const ties = node('Sub', [keptCol, sum(f64(above))], col);
  const tieRank = b.cumsum(f64(tied));
  const keep = node(
    'Or',
    [above, node('And', [tied, node('LessOrEqual', [tieRank, ties], [B, V], 'bool')], [B, V], 'bool')],
    [B, V],
    'bool',
  );
  return node('Where', [keep, w, tr.float64Constant([0])], [B, V]);
}
