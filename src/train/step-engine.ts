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
import { familyOf } from '../models/registry.js';
import { RunError, type TrainOptions } from './run-options.js';
import { type StepBatch, type StepResult, TrainStep } from './tf-step.js';

export interface StepEngine {
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

/** Why the onnxruntime trainer cannot train this run as asked, or null when it can. */
export function ortUnsupported(o: TrainOptions): string | null {
  if (o.accumulate !== 1)
    return 'gradient accumulation (--accumulate > 1) is not in the onnxruntime training graph yet';
  const c = familyOf(o.model).traceableTwin(o.model);
  if (c !== o.model) return 'this model decides by data during its forward pass (most-used compression)';
  return null;
}

/** The engine a run trains on: `auto` takes onnxruntime where it supports the run, else tfjs. */
export function resolveEngine(o: TrainOptions): 'tfjs' | 'onnxruntime' {
  const engine = o.engine ?? 'tfjs';
  if (engine === 'tfjs') return 'tfjs';
  const why = ortUnsupported(o);
  if (!why) return 'onnxruntime';
  if (engine === 'onnxruntime') throw new RunError(`--engine onnxruntime: ${why}; use --engine tfjs`);
  o.onLog?.(`training on tfjs: ${why}`);
  return 'tfjs';
}

export async function openStepEngine(o: TrainOptions, init: ParamArrays): Promise<StepEngine> {
  const opts = { lr: o.peakLr, clip: o.clip, seed: o.seed, accumulate: o.accumulate };
  if (resolveEngine(o) === 'onnxruntime')
    return OrtTrainStep.open(o.model, init, o.batch, { ...opts, threads: o.threads, device: o.device });
  return new TrainStep(o.model, init, o.batch, opts);
}
