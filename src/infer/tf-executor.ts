import * as tf from '@tensorflow/tfjs';
import { TfOps, type TfTensor } from '../engine/tfjs-ops.js';
import type { ParamArrays } from '../models/model-files.js';
import type { Feeds, GraphExecutor } from '../engine/executor.js';
import type { GraphBuilder } from '../models/family.js';

/**
 * TfOps whose graph inputs are the current call's feeds, so a graph builder runs eagerly. Like
 * onnxruntime's constant folding, a concat, slice or add of weights alone (a builder rearranging
 * them, e.g. WaveNet's step stacking its taps) runs on the first call and is kept for later ones:
 * eagerly it would otherwise copy those weights on every call.
 */
class FeedOps extends TfOps {
  feeds: Feeds = {};
  /** the weights, and what was folded from them, by tensor id */
  private readonly constants = new Set<number>();
  private readonly folded = new Map<string, TfTensor>();

  constructor(params: Iterable<TfTensor>) {
    super();
    for (const t of params) this.constants.add(t.id);
  }

  private fold(op: string, inputs: readonly TfTensor[], args: unknown, run: () => TfTensor): TfTensor {
    if (!inputs.every((t) => this.constants.has(t.id))) return run();
    const key = `${op}:${inputs.map((t) => t.id).join(',')}:${JSON.stringify(args)}`;
    let t = this.folded.get(key);
    if (!t) {
      t = tf.keep(run());
      this.folded.set(key, t);
      this.constants.add(t.id);
    }
    return t;
  }

  override add(a: TfTensor, b: TfTensor): TfTensor {
    return this.fold('add', [a, b], null, () => super.add(a, b));
  }

  override concat(xs: readonly TfTensor[], axis: number): TfTensor {
    return this.fold('concat', xs, axis, () => super.concat(xs, axis));
  }

  override slice(x: TfTensor, begin: readonly number[], size: readonly number[]): TfTensor {
    return this.fold('slice', [x], [begin, size], () => super.slice(x, begin, size));
  }

  dispose(): void {
    for (const t of this.folded.values()) t.dispose();
    this.folded.clear();
  }

  override input(name: string, _data: Float32Array, shape: readonly number[]): TfTensor {
    const f = this.feeds[name];
    if (!f) throw new Error(`graph input '${name}' was not fed`);
    if (f.data.length !== shape.reduce((a, v) => a * v, 1))
      throw new Error(`graph input '${name}': ${f.data.length} values for shape [${shape}]`);
    return this.constant(f.data, shape);
  }
}

/** A graph builder executed by tfjs on the active backend: the reference the ONNX graphs are checked against. */
export class TfExecutor implements GraphExecutor {
  private readonly ops: FeedOps;
  private readonly params: Map<string, TfTensor>;

  constructor(
    private readonly builder: GraphBuilder,
    params: ParamArrays,
  ) {
    this.params = new Map([...params].map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
    this.ops = new FeedOps(this.params.values());
  }

  async run(feeds: Feeds): Promise<Record<string, Float32Array>> {
    this.ops.feeds = feeds;
    const outs = tf.tidy(() => this.builder(this.ops, this.params));
    const result: Record<string, Float32Array> = {};
    try {
      for (const [name, t] of Object.entries(outs)) result[name] = (await t.data()) as Float32Array;
    } finally {
      for (const t of Object.values(outs)) t.dispose();
      this.ops.feeds = {};
    }
    return result;
  }

  async dispose(): Promise<void> {
    this.ops.dispose();
    for (const t of this.params.values()) t.dispose();
  }
}
