import * as tf from '@tensorflow/tfjs';
import { TfOps, type TfTensor } from '../engine/tfjs-ops.js';
import type { ParamArrays } from '../models/model-files.js';
import type { Feeds, GraphExecutor } from '../engine/executor.js';
import type { GraphBuilder } from '../models/family.js';

/** TfOps whose graph inputs are the current call's feeds, so a graph builder runs eagerly. */
class FeedOps extends TfOps {
  feeds: Feeds = {};

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
  private readonly ops = new FeedOps();
  private readonly params: Map<string, TfTensor>;

  constructor(
    private readonly builder: GraphBuilder,
    params: ParamArrays,
  ) {
    this.params = new Map([...params].map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
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
    for (const t of this.params.values()) t.dispose();
  }
}
