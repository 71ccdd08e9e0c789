import { advanceValidity, memoryKeyValid } from '../models/compressive.js';
import { stepFeeds } from '../models/compressive-step.js';
import type { TransformerConfig } from '../models/config.js';
import { oneHot } from '../models/layers.js';
import type { ModelConfig } from '../models/registry.js';
import { pastOf, pushQueues, queuesFromHistories, type WavenetQueues } from '../models/wavenet.js';
import { dilations, type WavenetConfig } from '../models/wavenet-config.js';
import type { Fed, Feeds, GraphExecutor } from './executor.js';
import type { Generator } from './generator-api.js';
import { SegmentScorer, zeroFed } from './segment-scorer.js';
import { NUM_CODES } from '../util/codes.js';

/** The graphs a generator drives: segment (priming), step, and for transformers roll and keys. */
export interface GenerationGraphs {
  segment: GraphExecutor;
  /** positions per call of the segment graph */
  segmentLength: number;
  step: GraphExecutor;
  roll?: GraphExecutor;
  keys?: GraphExecutor;
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
 * Priming shared by both model families: whole segments of the prompt through the segment graph
 * from empty state, `afterSegments` turns that state into step state, the rest goes sample by
 * sample. Returns the log-probabilities after the last code.
 */
async function primeRows(
  scorer: SegmentScorer,
  codes: Uint8Array,
  afterSegments: () => Promise<void>,
  step: (codes: Int32Array) => Promise<Float32Array>,
): Promise<Float32Array> {
  if (codes.length === 0) throw new RangeError('priming needs at least one code');
  const { batch: B, length: n } = scorer;
  scorer.state.resetAll();
  const whole = Math.floor(codes.length / n);
  let last: Float32Array | null = null;
  for (let s = 0; s < whole; s++)
    last = lastPosition(await scorer.run(repeatRows(codes.subarray(s * n, (s + 1) * n), B), null), B, n);
  await afterSegments();
  for (let t = whole * n; t < codes.length; t++) last = await step(new Int32Array(B).fill(codes[t]));
  return last!;
}

/**
 * Transformer generation: whole segments of a prompt go through the segment graph; then one step
 * graph call per sample over cached memory keys/values, with the memory roll (Algorithm 1's update
 * and compression) every n samples, exactly where segment mode updates memory.
 */
class TransformerGenerator implements Generator {
  private scorer: SegmentScorer;
  private memK: Fed[] = [];
  private memV: Fed[] = [];
  private segK: Fed[] = [];
  private segV: Fed[] = [];
  private segH: Fed[] = [];
  private pos = 0;

  constructor(
    private readonly cfg: TransformerConfig,
    readonly batch: number,
    readonly engine: string,
    private readonly g: GenerationGraphs,
  ) {
    if (!g.roll || !g.keys) throw new Error('transformer generation needs roll and keys graphs');
    if (g.segmentLength !== cfg.segment)
      throw new Error(`segment graph length ${g.segmentLength} differs from the model's segment ${cfg.segment}`);
    this.scorer = new SegmentScorer(cfg, batch, cfg.segment, g.segment);
  }

  private clearSegment(): void {
    const { layers, heads: H, dHead: dh, segment: n, dModel: d } = this.cfg;
    const B = this.batch;
    this.segK = Array.from({ length: layers }, () => zeroFed([B * H, n, dh]));
    this.segV = Array.from({ length: layers }, () => zeroFed([B * H, n, dh]));
    this.segH = Array.from({ length: layers }, () => zeroFed([B, n, d]));
    this.pos = 0;
  }

  private memoryFeeds(): Feeds {
    const f: Feeds = {};
    for (let i = 0; i < this.cfg.layers; i++) {
      f[`mem.${i}`] = this.scorer.state.tensors[`mem.${i}`];
      if (this.cfg.compressedMemory > 0) f[`cmem.${i}`] = this.scorer.state.tensors[`cmem.${i}`];
    }
    return f;
  }

  private takeKeys(out: Record<string, Float32Array>): void {
    const { layers, heads: H, dHead: dh, memory, compressedMemory } = this.cfg;
    const shape = [this.batch * H, memory + compressedMemory, dh];
    this.memK = Array.from({ length: layers }, (_, i) => ({ data: out[`memK.${i}`], shape }));
    this.memV = Array.from({ length: layers }, (_, i) => ({ data: out[`memV.${i}`], shape }));
  }

  prime(codes: Uint8Array): Promise<Float32Array> {
    return primeRows(
      this.scorer,
      codes,
      async () => {
        this.takeKeys(await this.g.keys!.run(this.memoryFeeds()));
        this.clearSegment();
      },
      (c) => this.step(c),
    );
  }

  async step(codes: Int32Array): Promise<Float32Array> {
    const { layers, heads: H, dHead: dh, dModel: d, segment: n } = this.cfg;
    const B = this.batch;
    if (codes.length !== B) throw new RangeError(`step takes ${B} codes, got ${codes.length}`);
    if (this.memK.length === 0) throw new Error('prime() the generator before stepping it');
    const st = this.scorer.state;
    const i = this.pos;
    const f = stepFeeds(this.cfg, B, i, st.memValid, st.cmemValid, (j, mv, cv) => memoryKeyValid(this.cfg, j, mv, cv));
    const K = this.cfg.memory + this.cfg.compressedMemory + n;
    const feeds: Feeds = {
      tokens: { data: oneHot(codes, NUM_CODES), shape: [B, NUM_CODES] },
      start: { data: f.start, shape: [1] },
      mask: { data: f.mask, shape: [B, 1, 1, K + 1] },
    };
    for (let l = 0; l < layers; l++) {
      feeds[`memK.${l}`] = this.memK[l];
      feeds[`memV.${l}`] = this.memV[l];
      feeds[`segK.${l}`] = this.segK[l];
      feeds[`segV.${l}`] = this.segV[l];
    }
    const out = await this.g.step.run(feeds);
    // Slot i of each layer's segment caches receives this position's key, value and input.
    for (let l = 0; l < layers; l++) {
      for (let b = 0; b < B; b++) {
        this.segH[l].data.set(out.h.subarray((l * B + b) * d, (l * B + b + 1) * d), (b * n + i) * d);
        for (let h = 0; h < H; h++) {
          const src = ((l * B + b) * H + h) * dh;
          const dst = ((b * H + h) * n + i) * dh;
          this.segK[l].data.set(out.k.subarray(src, src + dh), dst);
          this.segV[l].data.set(out.v.subarray(src, src + dh), dst);
        }
      }
    }
    this.pos++;
    if (this.pos === n) await this.roll();
    return out.logprobs;
  }

  private async roll(): Promise<void> {
    const feeds = this.memoryFeeds();
    this.segH.forEach((h, l) => (feeds[`seg.${l}`] = h));
    const out = await this.g.roll!.run(feeds);
    const st = this.scorer.state;
    for (const name of Object.keys(st.tensors))
      st.tensors[name] = { data: out[`out.${name}`], shape: st.tensors[name].shape };
    advanceValidity(this.cfg, this.cfg.segment, st.memValid, st.cmemValid);
    this.takeKeys(out);
    this.clearSegment();
  }

  async dispose(): Promise<void> {
    for (const e of [this.g.segment, this.g.step, this.g.roll, this.g.keys]) await e?.dispose();
  }
}

/** WaveNet generation: prime in segment mode, then the fast queues (Paine et al. 2016), one step graph call per sample. */
class WavenetGenerator implements Generator {
  private scorer: SegmentScorer;
  private q: WavenetQueues;

  constructor(
    private readonly cfg: WavenetConfig,
    readonly batch: number,
    readonly engine: string,
    private readonly g: GenerationGraphs,
  ) {
    this.scorer = new SegmentScorer(cfg, batch, g.segmentLength, g.segment);
    this.q = this.queues();
  }

  private queues(): WavenetQueues {
    return queuesFromHistories(
      this.cfg,
      this.batch,
      dilations(this.cfg).map((_, i) => this.scorer.state.tensors[`hist.${i}`].data),
    );
  }

  prime(codes: Uint8Array): Promise<Float32Array> {
    return primeRows(
      this.scorer,
      codes,
      async () => {
        this.q = this.queues();
      },
      (c) => this.step(c),
    );
  }

  async step(codes: Int32Array): Promise<Float32Array> {
    const B = this.batch;
    const R = this.cfg.residualChannels;
    if (codes.length !== B) throw new RangeError(`step takes ${B} codes, got ${codes.length}`);
    const feeds: Feeds = { tokens: { data: oneHot(codes, NUM_CODES), shape: [B, NUM_CODES] } };
    this.q.rings.forEach((_, i) => (feeds[`past.${i}`] = { data: pastOf(this.q, i, R).slice(), shape: [B, R] }));
    const out = await this.g.step.run(feeds);
    pushQueues(this.q, out.x, R);
    return out.logprobs;
  }

  async dispose(): Promise<void> {
    await this.g.segment.dispose();
    await this.g.step.dispose();
  }
}

export function stepGenerator(cfg: ModelConfig, batch: number, engine: string, graphs: GenerationGraphs): Generator {
  return cfg.kind === 'wavenet'
    ? new WavenetGenerator(cfg, batch, engine, graphs)
    : new TransformerGenerator(cfg, batch, engine, graphs);
}
