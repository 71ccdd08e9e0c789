/**
 * Training on onnxruntime: the family's training graph, its reverse pass (engine/onnx-grad.ts),
 * global-norm clipping and Adam (train/graph-optimizer.ts) traced into one ONNX graph, so a step
 * is one `run`. Weights, moments and carried state are fed in and read back each step (host
 * copies; measured in BENCHMARKS.md). The optimizer state is exported in the same form as the
 * tfjs trainer's (train/adam-state.ts), so a checkpoint resumes on either engine.
 */
import fs from 'node:fs';
import { Rng, type RngState } from '../data/rng.js';
import type { Feeds } from '../engine/executor.js';
import { gradients } from '../engine/onnx-grad.js';
import { OnnxTracer, type TraceTensor } from '../engine/onnx-trace.js';
import { OrtExecutor, type OrtOptions } from '../infer/ort-executor.js';
import { removeOrphanGraphs, tempGraphFile } from '../util/temp-graphs.js';
import { windowLength } from '../models/family.js';
import type { ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import type { ExportedState } from '../models/sequence-model.js';
import type { TrainingGraph } from '../models/training-graph.js';
import type { F32Map } from './adam-state.js';
import { adamCounters, readAdamState, slotKey } from './adam-state.js';
import { adamStep, clipByGlobalNorm, globalNorm, TFJS_ADAM } from './graph-optimizer.js';
import type { StepBatch, StepOptions, StepResult } from './tf-step.js';

const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

/** Positions per training row: a transformer segment, or a WaveNet crop with its context. */
export function rowLength(cfg: ModelConfig): number {
  return windowLength(familyOf(cfg).trainingWindows(cfg));
}

/**
 * With `accumulate` > 1 the graph also takes the running sum of this cycle's gradients (`acc.<k>`)
 * and 1 / (micro-steps including this one) (`invCount`), returns the new sum, and computes the
 * update from the clipped mean, as the tfjs trainer does; the host keeps that update only on a
 * cycle's last micro-step (Adam on the other micro-steps is a few elementwise ops, left unread).
 */
function traceTrainingGraph(
  cfg: ModelConfig,
  g: TrainingGraph,
  names: string[],
  init: ParamArrays,
  clip: number,
  accumulate: number,
) {
  const t = new OnnxTracer();
  const weights = names.map((k) => t.input(`p.${k}`, init.get(k)!.data, init.get(k)!.shape));
  const p = new Map(names.map((k, i) => [k, weights[i]]));
  const out = g.build(t, p);
  const grads = gradients(t, out.loss, weights).map(
    (gi, i): TraceTensor => gi ?? t.constant(new Float32Array(size(weights[i].shape)), weights[i].shape),
  );
  const norm = globalNorm(t, grads);
  const zeros = (k: string) => new Float32Array(size(init.get(k)!.shape));
  let update = grads;
  let updateNorm = norm;
  if (accumulate > 1) {
    const invCount = t.input('invCount', Float32Array.of(1), [1]);
    const sums = names.map((k, i) => t.add(t.input(`acc.${k}`, zeros(k), init.get(k)!.shape), grads[i]));
    names.forEach((k, i) => t.output(`out.acc.${k}`, sums[i]));
    update = sums.map((sum) => t.mul(sum, invCount));
    updateNorm = globalNorm(t, update);
  }
  const m = names.map((k) => t.input(`m.${k}`, zeros(k), init.get(k)!.shape));
  const v = names.map((k) => t.input(`v.${k}`, zeros(k), init.get(k)!.shape));
  const betaPowers = t.input('betaPowers', Float32Array.of(TFJS_ADAM.beta1, TFJS_ADAM.beta2), [2]);
  const lr = t.input('lr', Float32Array.of(0), [1]);
  const upd = adamStep(t, weights, clipByGlobalNorm(t, update, updateNorm, clip), { m, v, betaPowers }, lr);
  t.output('loss', out.loss);
  t.output('nll', out.nll);
  if (out.aux) t.output('aux', out.aux);
  t.output('norm', norm);
  names.forEach((k, i) => {
    t.output(`out.p.${k}`, upd.weights[i]);
    t.output(`out.m.${k}`, upd.state.m[i]);
    t.output(`out.v.${k}`, upd.state.v[i]);
  });
  t.output('out.betaPowers', upd.state.betaPowers);
  out.state.forEach((s, i) => t.output(`out.s.${i}`, s));
  return t.toModel({ graphName: `ctspeech_train_${cfg.kind}` });
}

export class OrtTrainStep {
  readonly order: string[];
  private weights: Float32Array[];
  private m: Float32Array[];
  private v: Float32Array[];
  private betaPowers: Float32Array = Float32Array.of(TFJS_ADAM.beta1, TFJS_ADAM.beta2);
  private iterations = 0;
  private lr: number;
  private state: Float32Array[];
  private readonly accumulate: number;
  /** this cycle's gradient sum and how many micro-steps it holds (accumulate > 1 only) */
  private acc: Float32Array[] | null = null;
  private accCount = 0;
  rng: Rng;

  private constructor(
    readonly cfg: ModelConfig,
    private readonly shapes: number[][],
    private readonly graph: TrainingGraph,
    private readonly exec: OrtExecutor,
    readonly summary: string,
    init: ParamArrays,
    opts: StepOptions,
  ) {
    this.order = [...init.keys()];
    this.weights = this.order.map((k) => Float32Array.from(init.get(k)!.data));
    this.m = this.order.map((k) => new Float32Array(init.get(k)!.data.length));
    this.v = this.order.map((k) => new Float32Array(init.get(k)!.data.length));
    this.state = graph.stateShapes.map((s) => new Float32Array(size(s)));
    this.lr = opts.lr ?? 3e-4;
    this.rng = new Rng(opts.seed ?? cfg.seed);
    this.accumulate = opts.accumulate ?? 1;
  }

  /** Traces and opens the training graph for `batch` rows (one `run` per optimizer step). */
  static async open(
    cfg: ModelConfig,
    init: ParamArrays,
    batch: number,
    opts: StepOptions & OrtOptions = {},
  ): Promise<OrtTrainStep> {
    const accumulate = opts.accumulate ?? 1;
    if (!Number.isInteger(accumulate) || accumulate < 1)
      throw new Error(`accumulate must be a positive integer, got ${opts.accumulate}`);
    const graph = familyOf(cfg).trainingGraph(cfg, batch, rowLength(cfg));
    const names = [...init.keys()];
    const bytes = traceTrainingGraph(cfg, graph, names, init, opts.clip ?? 0.1, accumulate);
    removeOrphanGraphs();
    const file = tempGraphFile('train');
    fs.writeFileSync(file, bytes);
    try {
      const { exec, info } = await OrtExecutor.open(file, { threads: opts.threads, device: opts.device });
      return new OrtTrainStep(
        cfg,
        names.map((k) => init.get(k)!.shape),
        graph,
        exec,
        info.summary,
        init,
        opts,
      );
    } finally {
      // The session holds the graph: a trainer killed later leaves no file behind.
      fs.rmSync(file, { force: true });
    }
  }

  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  async step(batch: StepBatch): Promise<StepResult> {
    const feeds: Feeds = this.graph.feeds(batch, this.rng);
    // The graph also multiplies reset rows by 0, which keeps a NaN: a new file starts from real zeros.
    this.graph.stateShapes.forEach(([B], i) => {
      const row = this.state[i].length / B;
      for (let b = 0; b < B; b++) if (batch.reset?.[b]) this.state[i].fill(0, b * row, (b + 1) * row);
    });
    this.order.forEach((k, i) => {
      const shape = this.shapes[i];
      feeds[`p.${k}`] = { data: this.weights[i], shape };
      feeds[`m.${k}`] = { data: this.m[i], shape };
      feeds[`v.${k}`] = { data: this.v[i], shape };
    });
    this.graph.stateShapes.forEach((shape, i) => (feeds[`s.${i}`] = { data: this.state[i], shape }));
    feeds.betaPowers = { data: this.betaPowers, shape: [2] };
    feeds.lr = { data: Float32Array.of(this.lr), shape: [1] };
    if (this.accumulate > 1) {
      this.acc ??= this.order.map((_, i) => new Float32Array(size(this.shapes[i])));
      this.order.forEach((k, i) => (feeds[`acc.${k}`] = { data: this.acc![i], shape: this.shapes[i] }));
      feeds.invCount = { data: Float32Array.of(1 / (this.accCount + 1)), shape: [1] };
    }
    const out = await this.exec.run(feeds);
    const loss = out.loss[0];
    const gradNorm = out.norm[0];
    // State is carried whatever happens to the weights, as the tfjs trainer does.
    this.state = this.graph.stateShapes.map((_, i) => out[`out.s.${i}`]);
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    let applied = false;
    if (!skipped && this.accumulate > 1 && ++this.accCount < this.accumulate) {
      this.acc = this.order.map((k) => out[`out.acc.${k}`]);
    } else if (!skipped) {
      this.weights = this.order.map((k) => out[`out.p.${k}`]);
      this.m = this.order.map((k) => out[`out.m.${k}`]);
      this.v = this.order.map((k) => out[`out.v.${k}`]);
      this.betaPowers = out['out.betaPowers'];
      this.iterations++;
      this.acc = null;
      this.accCount = 0;
      applied = true;
    }
    return { loss, nll: out.nll[0], aux: out.aux ? out.aux[0] : 0, gradNorm, skipped, applied };
  }

  exportParams(): ParamArrays {
    return new Map(
      this.order.map((k, i) => [k, { shape: [...this.shapes[i]], data: Float32Array.from(this.weights[i]) }]),
    );
  }

  exportState(): { model: ExportedState; rng: RngState } {
    if (this.midCycle) throw new Error('cannot checkpoint in the middle of a gradient accumulation cycle');
    return {
      model: {
        batch: this.graph.stateShapes[0]?.[0] ?? 0,
        tensors: this.state.map((data, i) => ({
          shape: [...this.graph.stateShapes[i]],
          data: Float32Array.from(data),
        })),
        counters: this.graph.counters(),
      },
      rng: this.rng.state(),
    };
  }

  importState(s: { model: ExportedState; rng: RngState }): void {
    this.state = s.model.tensors.map((t) => Float32Array.from(t.data));
    this.graph.setCounters(s.model.counters);
    this.rng = new Rng(s.rng);
  }

  /** The optimizer state in train/adam-state.ts's keys, as the tfjs trainer exports it. */
  exportOptimizer(): F32Map {
    const out = adamCounters(this.iterations, this.betaPowers, TFJS_ADAM);
    this.order.forEach((_, i) => {
      out.set(slotKey(i, 'm'), { shape: [...this.shapes[i]], data: Float32Array.from(this.m[i]) });
      out.set(slotKey(i, 'v'), { shape: [...this.shapes[i]], data: Float32Array.from(this.v[i]) });
    });
    return out;
  }

  importOptimizer(s: F32Map): void {
    const r = readAdamState(s, TFJS_ADAM, this.shapes);
    this.iterations = r.iterations;
    this.betaPowers = Float32Array.from(r.betaPowers);
    this.m = r.slots.map((x) => Float32Array.from(x.m.data));
    this.v = r.slots.map((x) => Float32Array.from(x.v.data));
  }

  get midCycle(): boolean {
    return this.accCount > 0;
  }

  async dispose(): Promise<void> {
    await this.exec.dispose();
  }
}
