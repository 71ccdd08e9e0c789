import type { Ops, Tensor } from '../engine/ops.js';
import { ctForward, type CtState, initialState, stateTensors } from './compressive.js';
import type { Params } from './layers.js';
import type { ModelConfig } from './registry.js';
import { initialWavenetState, wavenetForward, type WavenetState, wavenetStateTensors } from './wavenet.js';

/**
 * The one shape every model has (DESIGN.md section 2): (params, codes, state) -> (logits, state', aux).
 * Training, evaluation and generation go through this, whatever the model.
 */
export interface SequenceModel<T extends Tensor = Tensor> {
  readonly cfg: ModelConfig;
  initialState(ops: Ops<T>, batch: number): ModelState<T>;
  stateTensors(s: ModelState<T>): T[];
  forward(ops: Ops<T>, p: Params<T>, tokens: ArrayLike<number>, reset: ArrayLike<number> | null, state: ModelState<T>, opts?: { dropoutRng?: { nextFloat(): number } }): { logits: T; state: ModelState<T>; aux: T | null };
}

export type ModelState<T extends Tensor = Tensor> = CtState<T> | WavenetState<T>;

export function sequenceModel<T extends Tensor>(cfg: ModelConfig): SequenceModel<T> {
  if (cfg.kind === 'wavenet') {
    return {
      cfg,
      initialState: (ops, batch) => initialWavenetState(ops, cfg, batch),
      stateTensors: (s) => wavenetStateTensors(s as WavenetState<T>),
      forward: (ops, p, tokens, reset, state) => ({ ...wavenetForward(ops, cfg, p, tokens, reset, state as WavenetState<T>), aux: null }),
    };
  }
  return {
    cfg,
    initialState: (ops, batch) => initialState(ops, cfg, batch),
    stateTensors: (s) => stateTensors(s as CtState<T>),
    forward: (ops, p, tokens, reset, state, opts) => {
      const out = ctForward(ops, cfg, p, tokens, reset, state as CtState<T>, opts);
      return { logits: out.logits, state: out.state, aux: out.aux };
    },
  };
}
