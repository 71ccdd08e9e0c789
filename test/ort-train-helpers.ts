/**
 * Helpers for the onnxruntime training tests: the family's training graph traced with its reverse
 * pass and run on onnxruntime for gradients alone (no clip, no Adam), the same gradients from the
 * tfjs trainer's path (the family's SequenceModel under tf.variableGrads, as train/tf-step.ts
 * computes them), seeded weights and batches, and the error measure the tests report.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Feeds } from '../src/engine/executor.js';
import { gradients } from '../src/engine/onnx-grad.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import { nllLoss } from '../src/models/loss.js';
import type { ParamArrays } from '../src/models/model-files.js';
import { initParams } from '../src/models/param-spec.js';
import { familyOf, type ModelConfig, modelPreset, paramSpecOf, parseModelConfig } from '../src/models/registry.js';
import type { ModelState, SequenceModel } from '../src/models/sequence-model.js';
import type { TrainBatch, TrainingGraph } from '../src/models/training-graph.js';
import { rowLength } from '../src/train/ort-step.js';
import { tempDir } from './helpers.js';
import { codes, ops } from './model-helpers.js';

/**
 * The error measure of the parity tests: max_i |a_i - b_i| / max_i |b_i| over one tensor, with b
 * the reference. Relative to the tensor's largest entry rather than per entry, so entries that are
 * float32 noise around zero (sums that cancel) do not dominate. A zero reference gives 0 if a is
 * zero too, else Infinity.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] - b[i];
    d = Math.max(d, Number.isNaN(x) ? Infinity : Math.abs(x));
    m = Math.max(m, Math.abs(b[i]));
  }
  if (d === 0) return 0;
  return m === 0 ? Infinity : d / m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** A preset with overrides, parsed (and so checked) the way a config file is. */
export function configOf(preset: string, over: Record<string, unknown> = {}): ModelConfig {
  return parseModelConfig({ ...modelPreset(preset), ...over }, `${preset} + ${JSON.stringify(over)}`);
}

/**
 * Seeded weights at a larger scale than training's init, with non-zero biases and norm offsets, so
 * every parameter matters and gradients are well above float32 noise.
 */
export function testWeights(cfg: ModelConfig, seed = 5, std = 0.2): ParamArrays {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, seed, std);
  return new Map(
    specs.map((s) => [
      s.name,
      {
        shape: [...s.shape],
        data: v.get(s.name)!.map((x, i) => x + 0.1 * Math.sin(1 + i * 0.7 + s.name.length)),
      },
    ]),
  );
}

/** Training's own initial weights for a seed (train/training-run.ts). */
export function initWeights(cfg: ModelConfig, seed: number): ParamArrays {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, seed, cfg.initStd);
  return new Map(specs.map((s) => [s.name, { shape: [...s.shape], data: v.get(s.name)! }]));
}

export function copyParams(p: ParamArrays): ParamArrays {
  return new Map([...p].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
}

/**
 * Step k of a deterministic batch sequence: streams reset every row at k = 0 and row 1 at k = 2
 * (so step 2 has one row with full memories and one fresh), a few unscored positions; crops reset
 * at k = 0 only (the graph also carries WaveNet history when asked) and score after their context.
 */
export function syntheticBatch(cfg: ModelConfig, B: number, k: number): TrainBatch {
  const n = rowLength(cfg);
  const crops = cfg.kind === 'wavenet';
  const reset = Uint8Array.from({ length: B }, (_, b) => (k === 0 || (!crops && k === 2 && b === 1) ? 1 : 0));
  const mask = Float32Array.from({ length: B * n }, (_, i) =>
    crops ? (i % n < n - cfg.segment ? 0 : 1) : k === 0 && i < 3 ? 0 : 1,
  );
  return { inputs: codes(B * n, 100 + k), targets: codes(B * n, 200 + k), mask, reset };
}

export interface GradResult {
  loss: number;
  nll: number;
  aux: number | null;
  /** by parameter name; null where the engine has no gradient for it */
  grads: Map<string, Float32Array | null>;
  /** carried state after the step, in the training graph's order */
  state: Float32Array[];
}

/**
 * The family's training graph (models/training-graph.ts) traced with weights `p.<name>` as inputs,
 * its reverse pass (engine/onnx-grad.ts) appended, gradients `g.<name>` as outputs, run on
 * onnxruntime — what train/ort-step.ts builds, without clip and Adam.
 */
export class OrtGradientGraph {
  private constructor(
    readonly graph: TrainingGraph,
    readonly names: string[],
    private readonly shapes: number[][],
    private readonly hasGrad: boolean[],
    private readonly exec: OrtExecutor,
    private readonly file: string,
  ) {}

  static async open(cfg: ModelConfig, B: number, init: ParamArrays): Promise<OrtGradientGraph> {
    const graph = familyOf(cfg).trainingGraph(cfg, B, rowLength(cfg));
    const names = [...init.keys()];
    const t = new OnnxTracer();
    const w = names.map((k) => t.input(`p.${k}`, init.get(k)!.data, init.get(k)!.shape));
    const out = graph.build(t, new Map(names.map((k, i) => [k, w[i]])));
    const g = gradients(t, out.loss, w);
    g.forEach((gi, i) => gi && t.output(`g.${names[i]}`, gi));
    t.output('loss', out.loss);
    t.output('nll', out.nll);
    if (out.aux) t.output('aux', out.aux);
    out.state.forEach((s, i) => t.output(`out.s.${i}`, s));
    const file = path.join(tempDir('ctspeech-grad-'), 'grad.onnx');
    fs.writeFileSync(file, t.toModel({ graphName: 'grad' }));
    const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
    return new OrtGradientGraph(
      graph,
      names,
      names.map((k) => init.get(k)!.shape),
      g.map((x) => x !== null),
      exec,
      file,
    );
  }

  /** Runs one step's feeds (from `graph.feeds`) at these weights and carried state. */
  async run(stepFeeds: Feeds, weights: ParamArrays, state: Float32Array[]): Promise<GradResult> {
    const feeds: Feeds = { ...stepFeeds };
    this.names.forEach((k, i) => (feeds[`p.${k}`] = { data: weights.get(k)!.data, shape: this.shapes[i] }));
    this.graph.stateShapes.forEach((shape, i) => (feeds[`s.${i}`] = { data: state[i], shape }));
    const out = await this.exec.run(feeds);
    return {
      loss: out.loss[0],
      nll: out.nll[0],
      aux: out.aux ? out.aux[0] : null,
      grads: new Map(this.names.map((k, i) => [k, this.hasGrad[i] ? out[`g.${k}`] : null])),
      state: this.graph.stateShapes.map((_, i) => out[`out.s.${i}`]),
    };
  }

  zeroState(): Float32Array[] {
    return this.graph.stateShapes.map((s) => new Float32Array(s.reduce((a, d) => a * d, 1)));
  }

  async dispose(): Promise<void> {
    await this.exec.dispose();
    fs.rmSync(path.dirname(this.file), { recursive: true, force: true });
  }
}

/**
 * Gradients the way the tfjs trainer (train/tf-step.ts) takes them: the family's SequenceModel
 * forward under tf.variableGrads, NLL + aux, state carried between steps, dropout masks drawn
 * from the caller's generator.
 */
export class TfGradients {
  private readonly vars: tf.Variable[];
  private readonly model: SequenceModel<tf.Tensor>;
  private state: ModelState;

  constructor(
    cfg: ModelConfig,
    private readonly names: string[],
    weights: ParamArrays,
    B: number,
  ) {
    this.vars = names.map((k) => tf.variable(tf.tensor(weights.get(k)!.data, weights.get(k)!.shape)));
    this.model = familyOf(cfg).sequenceModel<tf.Tensor>(cfg);
    this.state = this.model.initialState(ops, B);
  }

  step(batch: TrainBatch, rng: { nextFloat(): number }): GradResult {
    const params = new Map(this.names.map((k, i) => [k, this.vars[i] as tf.Tensor]));
    let next: ModelState | null = null;
    let nll = NaN;
    let aux: number | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const out = this.model.forward(ops, params, batch.inputs, batch.reset, this.state, { dropoutRng: rng });
      next = out.state;
      for (const t of this.model.stateTensors(out.state)) tf.keep(t);
      const n = nllLoss(ops, out.logits, batch.targets, batch.mask) as tf.Scalar;
      nll = n.dataSync()[0];
      if (out.aux) aux = out.aux.dataSync()[0];
      return (out.aux ? tf.add(n, out.aux) : n) as tf.Scalar;
    }, this.vars);
    const loss = value.dataSync()[0];
    const g = new Map(
      this.names.map((k, i) => {
        const gi = grads[this.vars[i].name];
        return [k, gi ? Float32Array.from(gi.dataSync() as Float32Array) : null] as const;
      }),
    );
    // A state tensor may pass through unchanged (Transformer-XL's empty compressed memory).
    const live = new Set(this.model.stateTensors(next!));
    tf.dispose([value, ...Object.values(grads), ...this.model.stateTensors(this.state).filter((t) => !live.has(t))]);
    this.state = next!;
    const state = this.model.stateTensors(this.state).map((t) => Float32Array.from(t.dataSync() as Float32Array));
    return { loss, nll, aux, grads: g, state };
  }

  dispose(): void {
    tf.dispose([...this.vars, ...this.model.stateTensors(this.state)]);
  }
}
