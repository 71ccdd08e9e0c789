import type { Ops, Tensor } from '../engine/ops.js';
import type { Params } from './layers.js';

/** What every family's carried state has: its batch rows. The rest is the family's own. */
export interface ModelState {
  readonly batch: number;
}

/**
 * The one shape every model has (docs/models.md): (params, codes, state) -> (logits, state', aux).
 * Training runs models through this, whatever the family; each family implements it once.
 */
export interface SequenceModel<T extends Tensor = Tensor, S extends ModelState = ModelState> {
  initialState(ops: Ops<T>, batch: number): S;
  /** Every tensor a state holds, so a caller can dispose the previous state after a step. */
  stateTensors(s: S): T[];
  /** `tokens` [B * n] codes, row-major; reset[b] = 1 starts row b from empty state. */
  forward(
    ops: Ops<T>,
    p: Params<T>,
    tokens: ArrayLike<number>,
    reset: ArrayLike<number> | null,
    state: S,
    opts?: { dropoutRng?: { nextFloat(): number } },
  ): { logits: T; state: S; aux: T | null };
  /** Plain arrays of a state, for checkpoints: a resumed run continues with the same memories. */
  exportState(ops: Ops<T>, s: S): ExportedState;
  importState(ops: Ops<T>, e: ExportedState): S;
}

export interface ExportedState {
  batch: number;
  tensors: { shape: number[]; data: Float32Array }[];
  /** per-row counters (transformer memory validity) */
  counters: number[][];
}

export function exportTensors<T extends Tensor>(ops: Ops<T>, ts: T[]): ExportedState['tensors'] {
  return ts.map((t) => ({ shape: [...t.shape], data: ops.read(t) }));
}
