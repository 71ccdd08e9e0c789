/**
 * `Ops.sample` as ONNX nodes: the host sampler's arithmetic (engine/sampling.ts) step for step in
 * float64, so a graph that generates many samples per call draws the codes the per-sample loop
 * would. Each choice of the host is matched by a count over a monotone sequence:
 *  - the host walks the cumulative weights and returns the first code past u; CumSum is the same
 *    sequential float64 sum, and that code is the number of cumulative weights <= u;
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
  const node = (
    op: string,
    inputs: TraceTensor[],
    shape: readonly number[],
    dtype: TraceDType = 'float64',
    attrs: Record<string, TraceAttr> = {},
  ) => tr.emit(op, inputs, shape, attrs, 'sample', dtype);
  const f64 = (x: TraceTensor) => node('Cast', [x], x.shape, 'float64', { to: 11 });
  const col = [B, 1];
  const axis1 = tr.int64Constant([1]);
  const scalarAxis = tr.int64Constant([1], []);
  const sumRows = (x: TraceTensor) => node('ReduceSum', [x, axis1], col, 'float64', { keepdims: 1 });
  const cumsum = (x: TraceTensor) => node('CumSum', [x, scalarAxis], x.shape);
  const lastCol = (x: TraceTensor) => node('Slice', [x, tr.int64Constant([V - 1]), tr.int64Constant([V]), axis1], col);

  const z = node(
    'Mul',
    [f64(logits), tr.float64Constant([opts.temperature < GREEDY_BELOW ? 1 : 1 / opts.temperature])],
    [B, V],
  );
  const max = node('ReduceMax', [z], col, 'float64', { axes: [1], keepdims: 1 });
  // The host refuses NaN, +Infinity and rows with nothing but -Infinity: here such a row gets no code.
  const bad = node(
    'Or',
    [
      node(
        'Or',
        [node('IsNaN', [z], [B, V], 'bool'), node('IsInf', [z], [B, V], 'bool', { detect_negative: 0 })],
        [B, V],
        'bool',
      ),
      node('Equal', [max, tr.float64Constant([-Infinity])], col, 'bool'),
    ],
    [B, V],
    'bool',
  );
  const badRow = node(
    'Cast',
    [
      node('ReduceMax', [node('Cast', [bad], [B, V], 'float64', { to: 11 })], col, 'float64', {
        axes: [1],
        keepdims: 1,
      }),
    ],
    col,
    'bool',
    { to: 9 },
  );

  let code: TraceTensor; // int64 [B, 1]
  if (opts.temperature < GREEDY_BELOW) {
    code = node('ArgMax', [logits], col, 'int64', { axis: 1, keepdims: 1 });
  } else {
    let w = node('Exp', [node('Sub', [z, max], [B, V])], [B, V]);
    const k = opts.topK ?? V;
    const p = opts.topP ?? 1;
    if (k < V || p < 1) w = truncate(tr, node, w, k, p, B, V);
    const cum = cumsum(w);
    const hi = node('Slice', [f64(draws), tr.int64Constant([0]), tr.int64Constant([1]), axis1], col);
    const lo = node('Slice', [f64(draws), tr.int64Constant([1]), tr.int64Constant([2]), axis1], col);
    const u = node(
      'Mul',
      [node('Add', [node('Mul', [hi, tr.float64Constant([65536])], col), lo], col), tr.float64Constant([2 ** -32])],
      col,
    );
    const target = node('Mul', [u, lastCol(cum)], col);
    const passed = sumRows(f64(node('LessOrEqual', [cum, target], [B, V], 'bool')));
    // Rounding can leave u at the very top: the host then returns the last code with any weight.
    const lastWithWeight = node(
      'ArgMax',
      [f64(node('Greater', [w, tr.float64Constant([0])], [B, V], 'bool'))],
      col,
      'int64',
      {
        axis: 1,
        keepdims: 1,
        select_last_index: 1,
      },
    );
    code = node('Min', [node('Cast', [passed], col, 'int64', { to: 7 }), lastWithWeight], col, 'int64');
  }
  const iota = tr.int64Constant(
    Array.from({ length: V }, (_, c) => c),
    [1, V],
  );
  const hit = node(
    'And',
    [node('Equal', [code, iota], [B, V], 'bool'), node('Not', [badRow], col, 'bool')],
    [B, V],
    'bool',
  );
  return node('Cast', [hit], [B, V], 'float32', { to: 1 });
}

type NodeFn = (
  op: string,
  inputs: TraceTensor[],
  shape: readonly number[],
  dtype?: TraceDType,
  attrs?: Record<string, TraceAttr>,
) => TraceTensor;

/** The weights `w` [B, V] with all but the host's kept codes zeroed (top-k, then top-p within it). */
function truncate(
  tr: OnnxTracer,
  node: NodeFn,
  w: TraceTensor,
  k: number,
  p: number,
  B: number,
  V: number,
): TraceTensor {
  const col = [B, 1];
  const axis1 = tr.int64Constant([1]);
  const f64 = (x: TraceTensor) => node('Cast', [x], x.shape, 'float64', { to: 11 });
  const sumRows = (x: TraceTensor) => node('ReduceSum', [x, axis1], col, 'float64', { keepdims: 1 });
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
    const top = node('Slice', [sorted, tr.int64Constant([0]), tr.int64Constant([k]), axis1], [B, k]);
    const cum = node('CumSum', [top, tr.int64Constant([1], [])], [B, k]);
    const mass = node('Slice', [cum, tr.int64Constant([k - 1]), tr.int64Constant([k]), axis1], col);
    const target = node('Mul', [mass, tr.float64Constant([p])], col);
    const below = sumRows(f64(node('Less', [cum, target], [B, k], 'bool')));
    kept = node('Min', [node('Add', [below, tr.float64Constant([1])], col), tr.float64Constant([k])], col);
  }
  const keptCol = kept.shape.length === 2 ? kept : node('Expand', [kept, tr.int64Constant(col)], col);
  const at = node('Cast', [node('Sub', [keptCol, tr.float64Constant([1])], col)], col, 'int64', { to: 7 });
  const floor = node('GatherElements', [sorted, at], col, 'float64', { axis: 1 });
  const above = node('Greater', [w, floor], [B, V], 'bool');
  const tied = node('Equal', [w, floor], [B, V], 'bool');
  const ties = node('Sub', [keptCol, sumRows(f64(above))], col);
  const tieRank = node('CumSum', [f64(tied), tr.int64Constant([1], [])], [B, V]);
  const keep = node(
    'Or',
    [above, node('And', [tied, node('LessOrEqual', [tieRank, ties], [B, V], 'bool')], [B, V], 'bool')],
    [B, V],
    'bool',
  );
  return node('Where', [keep, w, tr.float64Constant([0])], [B, V]);
}
