/**
 * Reverse-mode differentiation over a traced graph: for a scalar `loss` recorded by an OnnxTracer,
 * the gradients with respect to chosen tensors, emitted as further nodes of the same trace (so the
 * training graph is one ONNX graph: forward, backward, and whatever update follows). Each node's
 * vector-Jacobian product is written with the tracer's own vocabulary; branches that do not lead
 * from the chosen tensors to the loss are skipped, and a tensor used twice sums its gradients.
 * `stopGradient` (an Identity tagged by its primitive) passes nothing back.
 */
import type { OnnxTracer, TraceNode, TraceTensor } from './onnx-trace.js';

const numel = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Integer values of a constant int64 input (axes, starts, pads), read from the trace's initializers. */
function ints(t: OnnxTracer, name: string): number[] {
  const init = t.initializers.get(name);
  if (!init || init.dtype !== 'int64') throw new Error(`reverse pass: ${name} is not a constant int64 input`);
  return Array.from(init.data as BigInt64Array, (v) => Number(v));
}

/** Sums a broadcast gradient back to the shape of the operand it was broadcast from. */
function unbroadcast(t: OnnxTracer, g: TraceTensor, shape: readonly number[]): TraceTensor {
  if (same(g.shape, shape)) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const summed = axes.length ? t.sum(g, axes, true) : g;
  return t.reshape(summed, shape);
}

/** g (reduced over `axes`, kept or not) broadcast back to `shape`. */
function expandBack(t: OnnxTracer, g: TraceTensor, shape: readonly number[], axes: readonly number[]): TraceTensor {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return t.emit('Expand', [t.reshape(g, kept), t.int64Constant(shape)], shape);
}

function reduceAxes(t: OnnxTracer, n: TraceNode, rank: number): number[] {
  const raw = n.op === 'ReduceSum' ? ints(t, n.inputs[1]) : (n.attrs.axes as number[]);
  return raw.map((a) => (a < 0 ? a + rank : a));
}

/** The vector-Jacobian product of one node: a gradient (or null) for each input. */
function vjp(t: OnnxTracer, n: TraceNode, g: TraceTensor): (TraceTensor | null)[] {
  const x = (i: number) => t.tensorNamed(n.inputs[i]);
  const y = () => t.tensorNamed(n.output);
  const one = () => t.constant(new Float32Array([1]), []);
  switch (n.op) {
    case 'Identity':
      return n.primitive === 'stopGradient' ? [null] : [g];
    case 'Add':
      return [unbroadcast(t, g, x(0).shape), unbroadcast(t, g, x(1).shape)];
    case 'Sub':
      return [unbroadcast(t, g, x(0).shape), unbroadcast(t, t.neg(g), x(1).shape)];
    case 'Mul':
      return [unbroadcast(t, t.mul(g, x(1)), x(0).shape), unbroadcast(t, t.mul(g, x(0)), x(1).shape)];
    case 'Div': {
      const [a, b] = [x(0), x(1)];
      const gb = t.neg(t.div(t.mul(g, a), t.mul(b, b)));
      return [unbroadcast(t, t.div(g, b), a.shape), unbroadcast(t, gb, b.shape)];
    }
    case 'Pow': {
      const e = t.initializers.get(n.inputs[1]);
      if (!e || e.data.length !== 1 || Number(e.data[0]) !== 2) throw new Error('reverse pass: only Pow(x, 2)');
      return [t.mul(g, t.scale(x(0), 2)), null];
    }
    case 'Neg':
      return [t.neg(g)];
    case 'Exp':
      return [t.mul(g, y())];
    case 'Log':
      return [t.div(g, x(0))];
    case 'Sqrt':
      return [t.div(g, t.scale(y(), 2))];
    case 'Tanh':
      return [t.mul(g, t.sub(one(), t.square(y())))];
    case 'Sigmoid':
      return [t.mul(g, t.mul(y(), t.sub(one(), y())))];
    case 'Relu':
      // relu(x) >= 0, so its sign is the derivative: 1 where x > 0, else 0.
      return [t.mul(g, t.emit('Sign', [y()], y().shape))];
    case 'MatMul': {
      const [a, b] = [x(0), x(1)];
      const swap = (m: TraceTensor) => {
        const r = m.shape.length;
        const perm = m.shape.map((_, i) => i);
        [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
        return t.transpose(m, perm);
      };
      if (a.shape.length === b.shape.length) return [t.matMul(g, swap(b)), t.matMul(swap(a), g)];
      if (b.shape.length !== 2) throw new Error(`reverse pass: MatMul of [${a.shape}] and [${b.shape}]`);
      const [k, m] = b.shape;
      const a2 = t.reshape(a, [-1, k]);
      const g2 = t.reshape(g, [-1, m]);
      return [t.matMul(g, swap(b)), t.matMul(swap(a2), g2)];
    }
    case 'Reshape':
      return [t.reshape(g, x(0).shape), null];
    case 'Transpose': {
      const perm = n.attrs.perm as number[];
      const inv = perm.map((_, i) => perm.indexOf(i));
      return [t.transpose(g, inv)];
    }
    case 'Concat': {
      const axis = n.attrs.axis as number;
      let at = 0;
      return n.inputs.map((_, i) => {
        const xi = x(i);
        const begin = g.shape.map((_d, k) => (k === axis ? at : 0));
        at += xi.shape[axis];
        return t.slice(g, begin, xi.shape);
      });
    }
    case 'Slice': {
      if (n.primitive === 'sliceAt')
        throw new Error('reverse pass: sliceAt (a data-dependent slice) is not differentiable here');
      const src = x(0);
      const starts = ints(t, n.inputs[1]);
      const ends = ints(t, n.inputs[2]);
      const pads = src.shape.map((d, i): [number, number] => [starts[i], d - ends[i]]);
      return [t.pad(g, pads), null, null, null];
    }
    case 'Pad': {
      const src = x(0);
      const begins = ints(t, n.inputs[1]).slice(0, src.shape.length);
      return [t.slice(g, begins, src.shape), null];
    }
    case 'ReduceSum':
    case 'ReduceMean': {
      const src = x(0);
      const axes = reduceAxes(t, n, src.shape.length);
      const back = expandBack(t, g, src.shape, axes);
      const count = numel(axes.map((a) => src.shape[a]));
      return n.op === 'ReduceMean' ? [t.scale(back, 1 / count), null] : [back, null];
    }
    case 'ReduceMax': {
      const src = x(0);
      const axes = reduceAxes(t, n, src.shape.length);
      // 1 where x equals its maximum: max - x is 0 there and positive elsewhere.
      const gap = t.sub(expandBack(t, y(), src.shape, axes), src);
      const isMax = t.sub(one(), t.emit('Sign', [gap], gap.shape));
      return [t.mul(expandBack(t, g, src.shape, axes), isMax)];
    }
    case 'Softmax': {
      const s = y();
      const last = s.shape.length - 1;
      return [t.mul(s, t.sub(g, t.sum(t.mul(g, s), [last], true)))];
    }
    case 'LogSoftmax': {
      const last = g.shape.length - 1;
      return [t.sub(g, t.mul(t.exp(y()), t.sum(g, [last], true)))];
    }
    case 'Gather': {
      // Rows gathered along axis 0: each row's gradient is added back where it came from.
      const src = x(0);
      if (n.attrs.axis !== 0 || src.shape.length !== 2) throw new Error('reverse pass: only Gather of rows');
      const idx = x(1);
      const at = t.emit('Unsqueeze', [idx, t.int64Constant([1])], [...idx.shape, 1], {}, 'grad', 'int64');
      const zeros = t.constant(new Float32Array(numel(src.shape)), src.shape);
      return [t.emit('ScatterND', [zeros, at, g], src.shape, { reduction: 'add' }), null];
    }
    default:
      throw new Error(`reverse pass: no derivative for ${n.op} (from ${n.primitive})`);
  }
}

/**
 * Gradients of the scalar `loss` with respect to each of `wrt`, as tensors of the same trace; null
 * where the loss does not depend on a tensor.
 */
export function gradients(t: OnnxTracer, loss: TraceTensor, wrt: readonly TraceTensor[]): (TraceTensor | null)[] {
  if (numel(loss.shape) !== 1) throw new Error(`reverse pass: the loss must be a scalar, got [${loss.shape}]`);
  const nodes = t.nodes.slice();
  const end = nodes.findIndex((n) => n.output === loss.name);
  if (end < 0) throw new Error(`reverse pass: ${loss.name} is not a node output`);
  // Forward: which values depend on the chosen tensors (and so carry a gradient).
  const live = new Set(wrt.map((w) => w.name));
  for (let i = 0; i <= end; i++) {
    const n = nodes[i];
    if (n.dtype !== 'float32' || (n.op === 'Identity' && n.primitive === 'stopGradient')) continue;
    if (n.inputs.some((name) => live.has(name))) live.add(n.output);
  }
  const grads = new Map<string, TraceTensor>();
  const accumulate = (name: string, g: TraceTensor) => {
    const prev = grads.get(name);
    grads.set(name, prev ? t.add(prev, g) : g);
  };
  grads.set(loss.name, t.constant(new Float32Array(numel(loss.shape)).fill(1), loss.shape));
  for (let i = end; i >= 0; i--) {
    const n = nodes[i];
    const g = grads.get(n.output);
    if (!g || !live.has(n.output)) continue;
    const back = vjp(t, n, g);
    n.inputs.forEach((name, k) => {
      const gi = back[k];
      if (gi && live.has(name)) accumulate(name, gi);
    });
  }
  return wrt.map((w) => grads.get(w.name) ?? null);
}
