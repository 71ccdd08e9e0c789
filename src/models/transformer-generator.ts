/**
 * The transformer family on the host between graph calls: its carried state (memories and their
 * per-row validity) and its generator.
 */
import type { Fed, Feeds, GraphExecutor } from '../engine/executor.js';
import { advanceValidity, memoryKeyValid, segmentMask } from './compressive.js';
import { stepFeeds } from './compressive-step.js';
import type { TransformerConfig } from './config.js';
import type { GenerationGraphs, Generator, HostState } from './family.js';
import { oneHot } from './layers.js';
import { copyStateRow, primeRows, SegmentScorer, zeroFed, zeroRow } from './segment-runner.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Memories `mem.i` [B, n_m, d] and compressed memories `cmem.i` [B, n_cm, d],
 * and how many slots of each row are history.
 */
export class TransformerHostState implements HostState {
  readonly tensors: Record<string, Fed> = {};
  readonly memValid: Int32Array;
  readonly cmemValid: Int32Array;

  constructor(
    readonly cfg: TransformerConfig,
    readonly batch: number,
  ) {
    this.memValid = new Int32Array(batch);
    this.cmemValid = new Int32Array(batch);
    for (let i = 0; i < cfg.layers; i++) {
      this.tensors[`mem.${i}`] = zeroFed([batch, cfg.memory, cfg.dModel]);
      if (cfg.compressedMemory > 0) this.tensors[`cmem.${i}`] = zeroFed([batch, cfg.compressedMemory, cfg.dModel]);
    }
  }

  reset(b: number): void {
    for (const t of Object.values(this.tensors)) zeroRow(t, b);
    this.memValid[b] = 0;
    this.cmemValid[b] = 0;
  }

  segmentFeeds(n: number): Feeds {
    const { cfg, batch: B } = this;
    return {
      mask: {
        data: segmentMask(cfg, B, n, this.memValid, this.cmemValid),
        shape: [B, 1, n, cfg.compressedMemory + cfg.memory + n],
      },
    };
  }

  advance(n: number): void {
    advanceValidity(this.cfg, n, this.memValid, this.cmemValid);
  }

  copyRow(src: HostState, from: number, to: number): void {
    if (!(src instanceof TransformerHostState)) throw new Error('copyRow: not a transformer state');
    copyStateRow(this, src, from, to);
    this.memValid[to] = src.memValid[from];
    this.cmemValid[to] = src.cmemValid[from];
  }
}

/**
 * Transformer generation: whole segments of a prompt go through the segment graph; then one step
 * graph call per sample over cached memory keys/values, with the memory roll (Algorithm 1's update
 * and compression) every n samples, exactly where segment mode updates memory.
 */
export class TransformerGenerator implements Generator {
  private state: TransformerHostState;
  private scorer: SegmentScorer;
  private memK: Fed[] = [];
  private memV: Fed[] = [];
  private segK: Fed[] = [];
  private segV: Fed[] = [];
  private segH: Fed[] = [];
  private pos = 0;
  readonly block?: Generator['block'];

  constructor(
    private readonly cfg: TransformerConfig,
    readonly batch: number,
    readonly engine: string,
    private readonly g: GenerationGraphs,
  ) {
    if (!g.roll || !g.keys) throw new Error('transformer generation needs roll and keys graphs');
    if (g.segmentLength !== cfg.segment)
      throw new Error(`segment graph length ${g.segmentLength} differs from the model's segment ${cfg.segment}`);
    this.state = new TransformerHostState(cfg, batch);
    this.scorer = new SegmentScorer(this.state, cfg.segment, g.segment);
    const { block } = g;
    if (block)
      this.block = {
        size: block.size,
        sampling: block.sampling,
        fits: () => this.pos + block.size <= cfg.segment,
        run: (prev, draws) => this.runBlock(block.exec, block.size, prev, draws),
      };
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
    return { ...this.state.tensors };
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

  /** The caches every step and block graph reads. */
  private cacheFeeds(feeds: Feeds): Feeds {
    for (let l = 0; l < this.cfg.layers; l++) {
      feeds[`memK.${l}`] = this.memK[l];
      feeds[`memV.${l}`] = this.memV[l];
      feeds[`segK.${l}`] = this.segK[l];
      feeds[`segV.${l}`] = this.segV[l];
    }
    return feeds;
  }

  /** Position i's additive mask over [memory keys; segment slots; itself] and its table offset. */
  private positionFeeds(i: number) {
    const st = this.state;
    return stepFeeds(this.cfg, this.batch, i, st.memValid, st.cmemValid, (j, mv, cv) =>
      memoryKeyValid(this.cfg, j, mv, cv),
    );
  }

  async step(codes: Int32Array): Promise<Float32Array> {
    const B = this.batch;
    if (codes.length !== B) throw new RangeError(`step takes ${B} codes, got ${codes.length}`);
    if (this.memK.length === 0) throw new Error('prime() the generator before stepping it');
    const f = this.positionFeeds(this.pos);
    const K = this.cfg.memory + this.cfg.compressedMemory + this.cfg.segment;
    const out = await this.g.step.run(
      this.cacheFeeds({
        tokens: { data: oneHot(codes, NUM_CODES), shape: [B, NUM_CODES] },
        start: { data: f.start, shape: [1] },
        mask: { data: f.mask, shape: [B, 1, 1, K + 1] },
      }),
    );
    await this.advance(out, 1);
    return out.logprobs;
  }

  private async runBlock(block: GraphExecutor, size: number, prev: Float32Array, draws: Float32Array) {
    const B = this.batch;
    if (this.memK.length === 0) throw new Error('prime() the generator before stepping it');
    const { segment: n } = this.cfg;
    const keys = this.cfg.memory + this.cfg.compressedMemory + n;
    // Each position's step feeds, as the per-sample path would build them at pos, pos + 1, ...
    const start = new Float32Array(size);
    const mask = new Float32Array(size * B * (keys + 1));
    const slot = new Float32Array(size * n);
    for (let j = 0; j < size; j++) {
      const f = this.positionFeeds(this.pos + j);
      start[j] = f.start[0];
      mask.set(f.mask, j * B * (keys + 1));
      slot[j * n + this.pos + j] = 1;
    }
    const out = await block.run(
      this.cacheFeeds({
        prev: { data: prev, shape: [B, NUM_CODES] },
        draws: { data: draws, shape: [size, B, 2] },
        start: { data: start, shape: [size] },
        mask: { data: mask, shape: [size, B, 1, 1, keys + 1] },
        slot: { data: slot, shape: [size, n] },
      }),
    );
    await this.advance(out, size);
    return { codes: out.codes, logprobs: out.logprobs };
  }

  /**
   * Slots pos .. pos + count - 1 of each layer's segment caches receive those positions' keys,
   * values and inputs (`h` [count * L, B, d], `k`, `v` [count * L, B, H, dh]); the memory rolls at
   * the segment's end.
   */
  private async advance(out: Record<string, Float32Array>, count: number): Promise<void> {
    const { layers: L, heads: H, dHead: dh, dModel: d, segment: n } = this.cfg;
    const B = this.batch;
    for (let j = 0; j < count; j++) {
      const i = this.pos + j;
      for (let l = 0; l < L; l++) {
        const row = j * L + l;
        for (let b = 0; b < B; b++) {
          this.segH[l].data.set(out.h.subarray((row * B + b) * d, (row * B + b + 1) * d), (b * n + i) * d);
          for (let h = 0; h < H; h++) {
            const src = ((row * B + b) * H + h) * dh;
            const dst = ((b * H + h) * n + i) * dh;
            this.segK[l].data.set(out.k.subarray(src, src + dh), dst);
            this.segV[l].data.set(out.v.subarray(src, src + dh), dst);
          }
        }
      }
    }
    this.pos += count;
    if (this.pos === n) await this.roll();
  }

  private async roll(): Promise<void> {
    const feeds = this.memoryFeeds();
    this.segH.forEach((h, l) => (feeds[`seg.${l}`] = h));
    const out = await this.g.roll!.run(feeds);
    const st = this.state;
    for (const name of Object.keys(st.tensors))
      st.tensors[name] = { data: out[`out.${name}`], shape: st.tensors[name].shape };
    st.advance(this.cfg.segment);
    this.takeKeys(out);
    this.clearSegment();
  }

  async dispose(): Promise<void> {
    for (const e of [this.g.segment, this.g.step, this.g.roll, this.g.keys, this.g.block?.exec]) await e?.dispose();
  }
}
