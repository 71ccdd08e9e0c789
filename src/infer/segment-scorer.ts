import { advanceValidity, segmentMask } from '../models/compressive.js';
import { oneHot } from '../models/layers.js';
import type { ModelConfig } from '../models/registry.js';
import { dilations } from '../models/wavenet-config.js';
import type { Fed, Feeds, GraphExecutor } from './executor.js';
import { NUM_CODES } from '../util/codes.js';

/** A float32 state tensor held on the host between graph calls. */
export function zeroFed(shape: number[]): Fed {
  return { data: new Float32Array(shape.reduce((a, v) => a * v, 1)), shape };
}

/** Zeroes row b of a [B, ...] tensor: that row's file starts afresh. */
export function zeroRow(t: Fed, b: number): void {
  const per = t.data.length / t.shape[0];
  t.data.fill(0, b * per, (b + 1) * per);
}

/**
 * Carried state of segment-mode inference on the host, under the names the segment graph uses
 * (mem.i / cmem.i, or hist.i for WaveNet), plus the transformer's per-row memory validity.
 */
export class SegmentState {
  readonly tensors: Record<string, Fed> = {};
  readonly memValid: Int32Array;
  readonly cmemValid: Int32Array;

  constructor(
    readonly cfg: ModelConfig,
    readonly batch: number,
  ) {
    this.memValid = new Int32Array(batch);
    this.cmemValid = new Int32Array(batch);
    if (cfg.kind === 'wavenet') {
      dilations(cfg).forEach((d, i) => (this.tensors[`hist.${i}`] = zeroFed([batch, d, cfg.residualChannels])));
    } else {
      for (let i = 0; i < cfg.layers; i++) {
        this.tensors[`mem.${i}`] = zeroFed([batch, cfg.memory, cfg.dModel]);
        if (cfg.compressedMemory > 0) this.tensors[`cmem.${i}`] = zeroFed([batch, cfg.compressedMemory, cfg.dModel]);
      }
    }
  }

  reset(b: number): void {
    for (const t of Object.values(this.tensors)) zeroRow(t, b);
    this.memValid[b] = 0;
    this.cmemValid[b] = 0;
  }

  resetAll(): void {
    for (let b = 0; b < this.batch; b++) this.reset(b);
  }
}

/**
 * Runs the segment graph over B rows of n codes, carrying state between calls: the host half of
 * evaluation and of prompt priming, whichever engine executes the graph.
 */
export class SegmentScorer {
  readonly state: SegmentState;

  constructor(
    readonly cfg: ModelConfig,
    readonly batch: number,
    readonly length: number,
    private readonly exec: GraphExecutor,
  ) {
    this.state = new SegmentState(cfg, batch);
  }

  /** tokens [B * n] (row-major); reset[b] = 1 starts row b from empty state. Returns log-probabilities [B * n * NUM_CODES]. */
  async run(tokens: ArrayLike<number>, reset: ArrayLike<number> | null): Promise<Float32Array> {
    const { batch: B, length: n, cfg, state } = this;
    if (tokens.length !== B * n) throw new Error(`segment graph takes ${B} x ${n} codes, got ${tokens.length}`);
    if (reset) for (let b = 0; b < B; b++) if (reset[b]) state.reset(b);
    const feeds: Feeds = { tokens: { data: oneHot(tokens, NUM_CODES), shape: [B * n, NUM_CODES] }, ...state.tensors };
    if (cfg.kind !== 'wavenet')
      feeds.mask = {
        data: segmentMask(cfg, B, n, state.memValid, state.cmemValid),
        shape: [B, 1, n, cfg.compressedMemory + cfg.memory + n],
      };
    const out = await this.exec.run(feeds);
    for (const name of Object.keys(state.tensors)) {
      const next = out[`out.${name}`];
      if (!next) throw new Error(`segment graph did not return out.${name}`);
      state.tensors[name] = { data: next, shape: state.tensors[name].shape };
    }
    if (cfg.kind !== 'wavenet') advanceValidity(cfg, n, state.memValid, state.cmemValid);
    return out.logprobs;
  }
}
