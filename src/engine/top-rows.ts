/**
 * Most-used selection (the `topRows` primitive of engine/ops.ts): per batch row, the m rows of x
 * whose score is highest, kept in their original order, ties going to the later row. Computed on
 * the host for eager engines, and as a static graph for traced ones (so most-used compression
 * trains and evaluates on onnxruntime). The traced form ranks by pairwise comparison rather than
 * ONNX TopK: TopK breaks ties towards the lower index and returns indices in score order, so
 * matching the host's rule would need a reversal and a second sort; n x n comparisons per row
 * (n = a segment, 256 for ct-cpu) cost less than one attention head.
 */
import type { OnnxTracer, TraceTensor } from './onnx-trace.js';

/** Selection matrices [B, m, n]: row t of batch b picks the t-th kept row of n, in order. */
export function topRowsSelection(score: Float32Array, B: number, n: number, m: number): Float32Array {
  const sel = new Float32Array(B * m * n);
  for (let b = 0; b < B; b++) {
    const idx = Array.from({ length: n }, (_, j) => j);
    idx.sort((x, y) => score[b * n + y] - score[b * n + x] || y - x);
    const keep = idx.slice(0, m).sort((x, y) => x - y);
    keep.forEach((j, t) => (sel[(b * m + t) * n + j] = 1));
  }
  return sel;
}

/** [n, n] with 1 where `on(row, col)`. */
function pattern(n: number, on: (row: number, col: number) => boolean): Float32Array {
  const out = new Float32Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (on(r, c)) out[r * n + c] = 1;
  return out;
}

/** The traced selection: x [B, n, d], score [B, n] -> [B, m, d]; no gradient reaches `score`. */
export function tracedTopRows(t: OnnxTracer, x: TraceTensor, score: TraceTensor, m: number): TraceTensor {
  const [B, n] = score.shape;
  const sign = (v: TraceTensor) => t.emit('Sign', [v], v.shape, {}, 'topRows');
  const s = t.stopGradient(score);
  const one = t.constant(Float32Array.of(1), []);
  // cmp[b, j, i] = sign(score_i - score_j): row j is beaten by every i above it, and by an equal later i.
  const cmp = sign(t.sub(t.reshape(s, [B, 1, n]), t.reshape(s, [B, n, 1])));
  const above = t.relu(cmp);
  const equal = t.sub(one, t.square(cmp));
  const later = t.constant(
    pattern(n, (j, i) => i > j),
    [1, n, n],
  );
  const rank = t.sum(t.add(above, t.mul(equal, later)), [2]); // [B, n]: rows ranked before row j
  // rank is a whole number: rank < m exactly when m - 0.5 - rank > 0.
  const keep = t.relu(sign(t.sub(t.constant(Float32Array.of(m - 0.5), []), rank)));
  // Where a kept row goes: how many kept rows precede it (an inclusive running count, minus one).
  const upTo = t.constant(
    pattern(n, (i, j) => i <= j),
    [n, n],
  );
  const slot = t.reshape(t.sub(t.matMul(keep, upTo), one), [B, 1, n]);
  const targets = t.constant(
    Float32Array.from({ length: m }, (_, k) => k),
    [1, m, 1],
  );
  const lands = t.sub(one, t.square(sign(t.sub(slot, targets)))); // [B, m, n]: 1 where row j lands in slot k
  const sel = t.mul(lands, t.reshape(keep, [B, 1, n]));
  return t.matMul(sel, x);
}
