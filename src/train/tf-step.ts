import * as tf from '@tensorflow/tfjs';
import { Rng, type RngState } from '../data/rng.js';
import { exportAdam, type F32Map, importAdam } from './adam-state.js';
import { TfOps } from '../engine/tfjs-ops.js';
import type { Params } from '../models/layers.js';
import type { ParamArrays } from '../models/model-files.js';
import { nllLoss } from '../models/loss.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import type { ExportedState, ModelState, SequenceModel } from '../models/sequence-model.js';

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
  /** a non-finite loss or gradient: nothing reached the weights */
  skipped: boolean;
  /** the optimizer updated the weights this step (every `accumulate` micro-steps) */
  applied: boolean;
}

export interface StepOptions {
  lr?: number;
  /** global-norm clip; 0 turns clipping off */
  clip?: number;
  seed?: number;
  /** apply the optimizer every k micro-steps on the mean of their gradients (the paper's late "update every k") */
  accumulate?: number;
}

let instances = 0;

/**
 * Eager tfjs training of any model: one segment (or crop batch) per micro-step, state carried
 * between steps, Adam with global-norm clipping (tfjs has none: gradients are computed, clipped,
 * then applied). Gradients of NLL + aux reach every parameter; the stop-gradients inside the model
 * keep the aux loss to the compression network and the NLL away from it.
 */
export class TrainStep {
  readonly ops = new TfOps();
  readonly summary = `tfjs (${tf.getBackend()})`;
  readonly vars = new Map<string, tf.Variable>();
  readonly order: string[];
  readonly optimizer: tf.AdamOptimizer;
  readonly model: SequenceModel<tf.Tensor>;
  state: ModelState;
  rng: Rng;
  private readonly clip: number;
  private readonly accumulate: number;
  private accum: tf.Tensor[] | null = null;
  private accumCount = 0;

  constructor(
    readonly cfg: ModelConfig,
    init: ParamArrays,
    batch: number,
    opts: StepOptions = {},
  ) {
    this.rng = new Rng(opts.seed ?? cfg.seed);
    const prefix = `m${instances++}/`;
    this.order = [...init.keys()];
    for (const [name, t] of init) this.vars.set(name, tf.variable(tf.tensor(t.data, t.shape), true, prefix + name));
    this.optimizer = tf.train.adam(opts.lr ?? 3e-4);
    this.clip = opts.clip ?? 0.1;
    this.accumulate = opts.accumulate ?? 1;
    if (!Number.isInteger(this.accumulate) || this.accumulate < 1)
      throw new Error(`accumulate must be a positive integer, got ${opts.accumulate}`);
    this.model = familyOf(cfg).sequenceModel(cfg);
    this.state = this.model.initialState(this.ops, batch);
  }

  get params(): Params<tf.Tensor> {
    return this.vars as unknown as Params<tf.Tensor>;
  }

  setLearningRate(lr: number): void {
    // tfjs reads learningRate when it applies gradients, so assigning it between steps is enough.
    (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
  }

  step(batch: StepBatch): StepResult {
    let next: ModelState | null = null;
    let nllT: tf.Scalar | null = null;
    let auxT: tf.Scalar | null = null;
    const varList = this.order.map((n) => this.vars.get(n)!);
    const { value, grads } = tf.variableGrads(() => {
      // A family without dropout (or a rate of 0) draws nothing from the generator.
      const out = this.model.forward(this.ops, this.params, batch.inputs, batch.reset, this.state, {
        dropoutRng: this.rng,
      });
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
    // A variable without a gradient this step (e.g. compression before memory fills) gets zeros, so
    // Adam, which keeps its moments by position in this list, always sees the same list.
    const full = varList.map((v) => grads[v.name] ?? tf.zerosLike(v));
    const gradNorm = Math.sqrt(full.reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    let applied = false;
    if (!skipped) {
      if (this.accum) {
        const sum = this.accum.map((a, i) => tf.add(a, full[i]));
        tf.dispose(this.accum);
        this.accum = sum;
      } else {
        this.accum = full.map((g) => g.clone());
      }
      this.accumCount++;
      if (this.accumCount >= this.accumulate) {
        this.applyAccumulated(varList);
        applied = true;
      }
    }
    tf.dispose([value, nllT!, ...(auxT ? [auxT] : []), ...Object.values(grads), ...full]);
    const prev = this.model.stateTensors(this.state);
    this.state = next!;
    const live = new Set(this.model.stateTensors(this.state));
    tf.dispose(prev.filter((t) => !live.has(t)));
    return { loss, nll, aux, gradNorm, skipped, applied };
  }

  private applyAccumulated(varList: tf.Variable[]): void {
    const acc = this.accum!;
    const n = this.accumCount;
    const norm = Math.sqrt(acc.reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0)) / n;
    const factor = (this.clip > 0 && norm > this.clip ? this.clip / norm : 1) / n;
    tf.tidy(() =>
      this.optimizer.applyGradients(
        varList.map((v, i) => ({ name: v.name, tensor: factor === 1 ? acc[i] : tf.mul(acc[i], factor) })),
      ),
    );
    tf.dispose(acc);
    this.accum = null;
    this.accumCount = 0;
  }

  /** Current weights as plain arrays, in parameter order. */
  exportParams(): ParamArrays {
    return new Map(
      this.order.map((name) => {
        const v = this.vars.get(name)!;
        return [name, { shape: [...v.shape], data: v.dataSync() as Float32Array }];
      }),
    );
  }

  exportState(): { model: ExportedState; rng: RngState } {
    if (this.accum) throw new Error('cannot checkpoint in the middle of a gradient accumulation cycle');
    return { model: this.model.exportState(this.ops, this.state), rng: this.rng.state() };
  }

  importState(s: { model: ExportedState; rng: RngState }): void {
    tf.dispose(this.model.stateTensors(this.state));
    this.state = this.model.importState(this.ops, s.model);
    this.rng = new Rng(s.rng);
  }

  /** True between micro-steps of an accumulation cycle, when a checkpoint would lose gradients. */
  /** Adam's complete state (train/adam-state.ts), for checkpoints. */
  exportOptimizer(): Promise<F32Map> {
    return exportAdam(this.optimizer);
  }

  importOptimizer(s: F32Map): Promise<void> {
    return importAdam(this.optimizer, s);
  }

  get midCycle(): boolean {
    return this.accum !== null;
  }

  dispose(): void {
    tf.dispose([...this.vars.values(), ...this.model.stateTensors(this.state), ...(this.accum ?? [])]);
    this.optimizer.dispose();
  }
}
