/**
 * The training step behind a run, on either engine: `TrainStep` (tfjs, eager autodiff) or
 * `OrtTrainStep` (onnxruntime, one traced graph per step). Both export the same optimizer state
 * and carried state, so one checkpoint format serves both and a run resumes on either.
 */
import type { RngState } from '../data/rng.js';
import type { ParamArrays } from '../models/model-files.js';
import type { ExportedState } from '../models/sequence-model.js';
import type { F32Map } from './adam-state.js';
import { OrtTrainStep } from './ort-step.js';
import type { TrainOptions } from './run-options.js';
import { type StepBatch, type StepResult, TrainStep } from './tf-step.js';

export interface StepEngine {
  /** what runs the steps, in words: "onnxruntime 1.30.0 (cpu, 2 threads)", "tfjs (wasm)" */
  readonly summary: string;
  setLearningRate(lr: number): void;
  step(batch: StepBatch): StepResult | Promise<StepResult>;
  exportParams(): ParamArrays;
  exportState(): { model: ExportedState; rng: RngState };
  importState(s: { model: ExportedState; rng: RngState }): void;
  exportOptimizer(): F32Map | Promise<F32Map>;
  importOptimizer(s: F32Map): void | Promise<void>;
  /** between micro-steps of a gradient accumulation cycle, when a checkpoint would lose gradients */
  readonly midCycle: boolean;
  dispose(): void | Promise<void>;
}

/**
 * The engine a run trains on: `auto` is onnxruntime, which trains every family, compression and
 * option; `tfjs` stays the library's default (the command line and pipelines default to auto).
 */
export function resolveEngine(o: TrainOptions): 'tfjs' | 'onnxruntime' {
  return o.engine === 'onnxruntime' || o.engine === 'auto' ? 'onnxruntime' : 'tfjs';
}

export async function openStepEngine(o: TrainOptions, init: ParamArrays): Promise<StepEngine> {
  const opts = { lr: o.peakLr, clip: o.clip, seed: o.seed, accumulate: o.accumulate };
  if (resolveEngine(o) === 'onnxruntime')
    return OrtTrainStep.open(o.model, init, o.batch, { ...opts, threads: o.threads, device: o.device });
  return new TrainStep(o.model, init, o.batch, opts);
}
