/**
 * Running a family's segment graph over B rows on the host, state carried between calls: the host
 * half of evaluation and of prompt priming, whichever engine executes the graph.
 */
import type { Fed, Feeds, GraphExecutor } from '../engine/executor.js';
import type { HostState } from './family.js';
import { oneHot } from './layers.js';
import { NUM_CODES } from '../util/codes.js';

/** A float32 state tensor of zeros, held on the host between graph calls. */
export function zeroFed(shape: number[]): Fed {
  return { data: new Float32Array(shape.reduce((a, v) => a * v, 1)), shape };
}

/** Zeroes row b of a [B, ...] tensor: that row's file starts afresh. */
export function zeroRow(t: Fed, b: number): void {
  const per = t.data.length / t.shape[0];
  t.data.fill(0, b * per, (b + 1) * per);
}

/** Row `to` of `dst` [B', ...] becomes row `from` of `src` [B, ...] (the same per-row shape). */
export function copyRow(dst: Fed, src: Fed, from: number, to: number): void {
  const per = dst.data.length / dst.shape[0];
  if (src.data.length / src.shape[0] !== per) throw new Error(`copyRow: rows of [${src.shape}] into [${dst.shape}]`);
  dst.data.set(src.data.subarray(from * per, (from + 1) * per), to * per);
}

/** copyRow for every named state tensor of two host states. */
export function copyStateRow(dst: HostState, src: HostState, from: number, to: number): void {
  for (const [name, t] of Object.entries(dst.tensors)) {
    const s = src.tensors[name];
    if (!s) throw new Error(`copyRow: the source state has no ${name}`);
    copyRow(t, s, from, to);
  }
}

export class SegmentScorer {
  readonly batch: number;

  constructor(
    readonly state: HostState,
    readonly length: number,
    private readonly exec: GraphExecutor,
  ) {
    this.batch = state.batch;
  }

  /**
   * tokens [B * n] (row-major); reset[b] = 1 starts row b from empty state.
   * Returns log-probabilities [B * n * NUM_CODES].
   */
  async run(tokens: ArrayLike<number>, reset: ArrayLike<number> | null): Promise<Float32Array> {
    const { batch: B, length: n, state } = this;
    if (tokens.length !== B * n) throw new Error(`segment graph takes ${B} x ${n} codes, got ${tokens.length}`);
    if (reset) for (let b = 0; b < B; b++) if (reset[b]) state.reset(b);
    const feeds: Feeds = {
      tokens: { data: oneHot(tokens, NUM_CODES), shape: [B * n, NUM_CODES] },
      ...state.tensors,
      ...state.segmentFeeds(n),
    };
    const out = await this.exec.run(feeds);
    for (const name of Object.keys(state.tensors)) {
      const next = out[`out.${name}`];
      if (!next) throw new Error(`segment graph did not return out.${name}`);
      state.tensors[name] = { data: next, shape: state.tensors[name].shape };
    }
    state.advance(n);
    return out.logprobs;
  }
}

/** The last position's log-probabilities of every row from a segment call's [B * n * NUM_CODES]. */
function lastPosition(logprobs: Float32Array, B: number, n: number): Float32Array {
  const out = new Float32Array(B * NUM_CODES);
  for (let b = 0; b < B; b++)
    out.set(logprobs.subarray(((b + 1) * n - 1) * NUM_CODES, (b + 1) * n * NUM_CODES), b * NUM_CODES);
  return out;
}

function repeatRows(codes: Uint8Array, B: number): Int32Array {
  const out = new Int32Array(B * codes.length);
  for (let b = 0; b < B; b++) out.set(codes, b * codes.length);
  return out;
}

/**
 * Priming shared by every family's generator: whole segments of the prompt through the segment
 * graph from empty state, `afterSegments` turns that state into step state, the rest goes sample
 * by sample. Returns the log-probabilities after the last code.
 */
export async function primeRows(
  scorer: SegmentScorer,
  codes: Uint8Array,
  afterSegments: () => Promise<void>,
  step: (codes: Int32Array) => Promise<Float32Array>,
): Promise<Float32Array> {
  if (codes.length === 0) throw new RangeError('priming needs at least one code');
  const { batch: B, length: n } = scorer;
  for (let b = 0; b < B; b++) scorer.state.reset(b);
  const whole = Math.floor(codes.length / n);
  let last: Float32Array | null = null;
  for (let s = 0; s < whole; s++)
    last = lastPosition(await scorer.run(repeatRows(codes.subarray(s * n, (s + 1) * n), B), null), B, n);
  await afterSegments();
  for (let t = whole * n; t < codes.length; t++) last = await step(new Int32Array(B).fill(codes[t]));
  return last!;
}
