import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng.js';
import { TfOps } from '../engine/tfjs-ops.js';
import { nllLoss } from '../models/compressive.js';
import type { Params } from '../models/layers.js';
import type { ModelConfig } from '../models/registry.js';
import { type ModelState, type SequenceModel, sequenceModel } from '../models/sequence-model.js';

export interface StepBatch {
  inputs: ArrayLike<number>;
  targets: ArrayLike<number>;
  mask: ArrayLike<number>;
  reset: ArrayLike<number> | null;
}

export interface StepResult {
  loss: number;
  nll: number;
  aux: number;
  gradNorm: number;
  skipped: boolean;
}

let instances = 0;

/**
 * Eager tfjs training of any model: one segment (or crop batch) per step, state carried between
 * steps, Adam with global-norm clipping (tfjs has none: gradients are computed, clipped, then
 * applied). Gradients of NLL + aux reach every parameter; the stop-gradients inside the model keep
 * the aux loss to the compression network and the NLL away from it.
 */
export class TrainStep {
  readonly ops = new TfOps();
  readonly vars = new Map<string, tf.Variable>();
  private readonly order: string[];
  private readonly optimizer: tf.AdamOptimizer;
  state: ModelState<tf.Tensor>;
  readonly model: SequenceModel<tf.Tensor>;

  private readonly rng: Rng;

  constructor(readonly cfg: ModelConfig, init: Map<string, { shape: number[]; data: Float32Array }>, batch: number, opts: { lr?: number; clip?: number; seed?: number } = {}) {
    this.rng = new Rng(opts.seed ?? cfg.seed);
    const prefix = `ct${instances++}/`;
    this.order = [...init.keys()];
    for (const [name, t] of init) this.vars.set(name, tf.variable(tf.tensor(t.data, t.shape), true, prefix + name));
    this.optimizer = tf.train.adam(opts.lr ?? 3e-4);
    this.clip = opts.clip ?? 0.1;
    this.model = sequenceModel(cfg);
    this.state = this.model.initialState(this.ops, batch);
  }

  private readonly clip: number;

  get params(): Params<tf.Tensor> {
    return this.vars as unknown as Params<tf.Tensor>;
  }

  step(batch: StepBatch): StepResult {
    let next: ModelState<tf.Tensor> | null = null;
    let nllT: tf.Scalar | null = null;
    let auxT: tf.Scalar | null = null;
    const varList = this.order.map((n) => this.vars.get(n)!);
    const { value, grads } = tf.variableGrads(() => {
      const dropout = this.cfg.kind === 'transformer' && this.cfg.dropout > 0;
      const out = this.model.forward(this.ops, this.params, batch.inputs, batch.reset, this.state, { dropoutRng: dropout ? this.rng : undefined });
      next = out.state;
      for (const t of this.model.stateTensors(out.state)) tf.keep(t);
      const nll = nllLoss(this.ops, out.logits, batch.targets, batch.mask) as tf.Scalar;
      nllT = tf.keep(nll.clone());
      if (out.aux) auxT = tf.keep((out.aux as tf.Scalar).clone());
      return out.aux ? (tf.add(nll, out.aux) as tf.Scalar) : nll;
    }, varList);
    const loss = value.dataSync()[0];
    const nll = nllT!.dataSync()[0];
    const aux = auxT ? (auxT as tf.Scalar).dataSync()[0] : 0;
    const gradNorm = Math.sqrt(Object.values(grads).reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    if (!skipped) {
      const factor = this.clip > 0 && gradNorm > this.clip ? this.clip / gradNorm : 1;
      // Adam keeps its moments by position in this list: every variable, same order, every step
      // (a variable without a gradient this step, e.g. compression before memory fills, gets zeros).
      tf.tidy(() =>
        this.optimizer.applyGradients(
          varList.map((v) => {
            const g = grads[v.name];
            return { name: v.name, tensor: g ? (factor === 1 ? g : tf.mul(g, factor)) : tf.zerosLike(v) };
          }),
        ),
      );
    }
    tf.dispose([value, nllT!, ...(auxT ? [auxT] : []), ...Object.values(grads)]);
    const prev = this.model.stateTensors(this.state);
    this.state = next!;
    const live = new Set(this.model.stateTensors(this.state));
    tf.dispose(prev.filter((t) => !live.has(t)));
    return { loss, nll, aux, gradNorm, skipped };
  }

  dispose(): void {
    tf.dispose([...this.vars.values(), ...this.model.stateTensors(this.state)]);
    this.optimizer.dispose();
  }
}
