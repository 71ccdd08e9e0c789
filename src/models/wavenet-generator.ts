/** The WaveNet family on the host between graph calls: its carried layer histories and its generator. */
import type { Fed, Feeds, GraphExecutor } from '../engine/executor.js';
import type { GenerationGraphs, Generator, HostState } from './family.js';
import { oneHot } from './layers.js';
import { copyStateRow, primeRows, SegmentScorer, zeroFed, zeroRow } from './segment-runner.js';
import { pastOf, pushQueues, queuesFromHistories, type WavenetQueues } from './wavenet.js';
import { dilations, type WavenetConfig } from './wavenet-config.js';
import { NUM_CODES } from '../util/codes.js';

/** Per layer the last d_i inputs of that layer, `hist.i` [B, d_i, R] (zeros: silence before the start). */
export class WavenetHostState implements HostState {
  readonly tensors: Record<string, Fed> = {};

  constructor(
    readonly cfg: WavenetConfig,
    readonly batch: number,
  ) {
    dilations(cfg).forEach((d, i) => (this.tensors[`hist.${i}`] = zeroFed([batch, d, cfg.residualChannels])));
  }

  reset(b: number): void {
    for (const t of Object.values(this.tensors)) zeroRow(t, b);
  }

  segmentFeeds(): Feeds {
    return {};
  }

  copyRow(src: HostState, from: number, to: number): void {
    copyStateRow(this, src, from, to);
  }

  advance(): void {}
}

/**
 * WaveNet generation: prime in segment mode, then the fast queues (Paine et al. 2016),
 * one step graph call per sample.
 */
export class WavenetGenerator implements Generator {
  private state: WavenetHostState;
  private scorer: SegmentScorer;
  private q: WavenetQueues;
  readonly block?: Generator['block'];

  constructor(
    private readonly cfg: WavenetConfig,
    readonly batch: number,
    readonly engine: string,
    private readonly g: GenerationGraphs,
  ) {
    this.state = new WavenetHostState(cfg, batch);
    this.scorer = new SegmentScorer(this.state, g.segmentLength, g.segment);
    this.q = this.queues();
    const { block } = g;
    if (block)
      this.block = {
        size: block.size,
        sampling: block.sampling,
        run: (prev, draws) => this.runBlock(block.exec, block.size, prev, draws),
      };
  }

  private queues(): WavenetQueues {
    return queuesFromHistories(
      this.cfg,
      this.batch,
      dilations(this.cfg).map((_, i) => this.state.tensors[`hist.${i}`].data),
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
    const L = this.q.rings.length;
    const past = new Float32Array(L * B * R);
    this.q.rings.forEach((_, i) => past.set(pastOf(this.q, i, R), i * B * R));
    const feeds: Feeds = {
      tokens: { data: oneHot(codes, NUM_CODES), shape: [B, NUM_CODES] },
      past: { data: past, shape: [L * B, R] },
    };
    const out = await this.g.step.run(feeds);
    pushQueues(this.q, out.x, R);
    return out.logprobs;
  }

  private async runBlock(block: GraphExecutor, K: number, prev: Float32Array, draws: Float32Array) {
    const B = this.batch;
    const R = this.cfg.residualChannels;
    const BR = B * R;
    const feeds: Feeds = { prev: { data: prev, shape: [B, NUM_CODES] }, draws: { data: draws, shape: [K, B, 2] } };
    // Layer i's next min(K, d) entries of x[t-d], oldest first: its ring from pos, wrapping once.
    this.q.rings.forEach((ring, i) => {
      const d = ring.length / BR;
      const m = Math.min(K, d);
      const from = this.q.pos[i];
      const data = new Float32Array(m * BR);
      const first = Math.min(m, d - from);
      data.set(ring.subarray(from * BR, (from + first) * BR));
      if (first < m) data.set(ring.subarray(0, (m - first) * BR), first * BR);
      feeds[`past.${i}`] = { data, shape: [m, B, R] };
    });
    const out = await block.run(feeds);
    const perStep = this.q.rings.length * BR;
    for (let j = 0; j < K; j++) pushQueues(this.q, out.x.subarray(j * perStep, (j + 1) * perStep), R);
    return { codes: out.codes, logprobs: out.logprobs };
  }

  async dispose(): Promise<void> {
    await this.g.segment.dispose();
    await this.g.step.dispose();
    await this.g.block?.exec.dispose();
  }
}
