import type { Ops, Tensor } from '../engine/ops.js';
import { ctForward, type CtState, initialState, stateTensors } from './compressive.js';
import type { Params } from './layers.js';
import type { ModelConfig } from './registry.js';
import { initialWavenetState, wavenetForward, type WavenetState, wavenetStateTensors } from './wavenet.js';

/**
 * The one shape every model has (docs/models.md): (params, codes, state) -> (logits, state', aux).
 * Training, evaluation and generation go through this, whatever the model.
 */
export interface SequenceModel<T extends Tensor = Tensor> {
  readonly cfg: ModelConfig;
  initialState(ops: Ops<T>, batch: number): ModelState<T>;
  stateTensors(s: ModelState<T>): T[];
  forward(
    ops: Ops<T>,
    p: Params<T>,
    tokens: ArrayLike<number>,
    reset: ArrayLike<number> | null,
    state: ModelState<T>,
    opts?: { dropoutRng?: { nextFloat(): number } },
  ): { logits: T; state: ModelState<T>; aux: T | null };
  /** Plain arrays of a state, for checkpoints: a resumed run continues with the same memories. */
  exportState(ops: Ops<T>, s: ModelState<T>): ExportedState;
  importState(ops: Ops<T>, e: ExportedState): ModelState<T>;
}

export interface ExportedState {
  batch: number;
  tensors: { shape: number[]; data: Float32Array }[];
  /** per-row counters (transformer memory validity) */
  counters: number[][];
}

function exportTensors<T extends Tensor>(ops: Ops<T>, ts: T[]): ExportedState['tensors'] {
  return ts.map((t) => ({ shape: [...t.shape], data: ops.read(t) }));
}

export type ModelState<T extends Tensor = Tensor> = CtState<T> | WavenetState<T>;

export function sequenceModel<T extends Tensor>(cfg: ModelConfig): SequenceModel<T> {
  if (cfg.kind === 'wavenet') {
    return {
      cfg,
      initialState: (ops, batch) => initialWavenetState(ops, cfg, batch),
      stateTensors: (s) => wavenetStateTensors(s as WavenetState<T>),
      forward: (ops, p, tokens, reset, state) => ({
        ...wavenetForward(ops, cfg, p, tokens, reset, state as WavenetState<T>),
        aux: null,
      }),
      exportState: (ops, s) => ({
        batch: s.batch,
        tensors: exportTensors(ops, (s as WavenetState<T>).hist),
        counters: [],
      }),
      importState: (ops, e) => ({ batch: e.batch, hist: e.tensors.map((t) => ops.constant(t.data, t.shape)) }),
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
    exportState: (ops, s) => {
      const c = s as CtState<T>;
      return {
        batch: c.batch,
        tensors: exportTensors(ops, [...c.mem, ...c.cmem]),
        counters: [Array.from(c.memValid), Array.from(c.cmemValid)],
      };
    },
    importState: (ops, e) => {
      const ts = e.tensors.map((t) => ops.constant(t.data, t.shape));
      const L = ts.length / 2;
      return {
        batch: e.batch,
        mem: ts.slice(0, L),
        cmem: ts.slice(L),
        memValid: Int32Array.from(e.counters[0]),
        cmemValid: Int32Array.from(e.counters[1]),
      };
    },
  };
}
