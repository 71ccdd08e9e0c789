/** What a training run is asked to do and what it reports back. */
import type { OrtDevice } from '../infer/ort-executor.js';
import type { ModelConfig } from '../models/registry.js';
import { UserError } from '../util/errors.js';

export interface TrainOptions {
  /** a prepared corpus, or audio folders/files to prepare into <run>/corpus */
  data: string[];
  run: string;
  model: ModelConfig;
  /** rows per step */
  batch: number;
  /** total optimizer steps of the run (the schedule's length); a resumed run continues to it */
  steps: number;
  /** stop this invocation after this many minutes (checkpointed; rerun to continue) */
  minutes?: number;
  /** stop this invocation after this many steps (checkpointed; rerun to continue) */
  stopAfter?: number;
  peakLr: number;
  minLr: number;
  warmup: number;
  clip: number;
  accumulate: number;
  validEvery: number;
  /** cap on validation samples, so validation stays cheap on CPU */
  validSamples: number;
  checkpointEvery: number;
  seed: number;
  /**
   * Start over even if the run folder holds a run: its files are moved into <run>/replaced-<time>/
   * (never deleted). Without it, a folder that cannot be resumed exactly is refused.
   */
  restart?: boolean;
  /**
   * What runs the training step: tfjs (eager, its autodiff), onnxruntime (one traced graph per step:
   * forward, our reverse pass, clip and Adam), or auto (onnxruntime where it supports the run, else
   * tfjs). Default tfjs for the library; the command line defaults to auto. A run resumes on either.
   */
  engine?: 'auto' | 'tfjs' | 'onnxruntime';
  /** onnxruntime: intra-op threads (default all cores) and device */
  threads?: number;
  device?: OrtDevice;
  onStep?: (p: TrainProgress) => void;
  onLog?: (line: string) => void;
  /** set by a signal handler: the loop checkpoints and returns */
  stopSignal?: { stop: boolean };
}

export interface TrainProgress {
  step: number;
  steps: number;
  samplesPerSecond: number;
  loss: number;
  nll: number;
  lr: number;
}

export interface TrainSummary {
  run: string;
  step: number;
  finished: boolean;
  /** the run had already reached its steps: this invocation trained nothing and touched nothing */
  alreadyFinished: boolean;
  interrupted: boolean;
  resumedFrom: number | null;
  skippedSteps: number;
  lastTrainNll: number | null;
  validNats: number | null;
  /** unigram entropy of the training codes; null for an already finished run whose checkpoint predates it */
  unigramNats: number | null;
  samplesPerSecond: number;
}

/** A run folder or corpus that cannot be trained from as asked. */
export class RunError extends UserError {}
