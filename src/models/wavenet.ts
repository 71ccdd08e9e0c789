import type { Ops, Tensor } from '../engine/ops.js';
import { clearRows, linear, oneHot, param, type Params } from './layers.js';
import { dilations, type WavenetConfig } from './wavenet-config.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Segment-mode state: for each layer, the last d_i inputs of that layer [B, d_i, R] (zeros =
 * silence before the start). Carrying it makes consecutive segments score exactly as one long pass.
 */
export interface WavenetState<T extends Tensor = Tensor> {
  batch: number;
  history: T[];
}

export function initialWavenetState<T extends Tensor>(ops: Ops<T>, cfg: WavenetConfig, batch: number): WavenetState<T> {
  const R = cfg.residualChannels;
  return { batch, history: dilations(cfg).map((d) => ops.constant(new Float32Array(batch * d * R), [batch, d, R])) };
}

export function wavenetStateTensors<T extends Tensor>(s: WavenetState<T>): T[] {
  return [...s.history];
}

/** One layer's gated unit on aligned inputs: tanh(W_f * x) ⊙ σ(W_g * x) with x = (x[t-d], x[t]). */
function gated<T extends Tensor>(ops: Ops<T>, layer: (s: string) => T, past: T, cur: T, D: number): T {
  const z = ops.add(ops.add(linear(ops, past, layer('conv.w0')), linear(ops, cur, layer('conv.w1'))), layer('conv.b'));
  const lead = z.shape.slice(0, -1);
  const begin = lead.map(() => 0);
  const filt = ops.slice(z, [...begin, 0], [...lead, D]);
  const gate = ops.slice(z, [...begin, D], [...lead, D]);
  return ops.mul(ops.tanh(filt), ops.sigmoid(gate));
}

/**
 * The same unit for one position [B, R], in fewer kernels: a one-sample step is bound by its count
 * of onnxruntime kernels, not by arithmetic (docs/models.md). The two taps are one matmul over the
 * inputs side by side, filter and gate separately, so onnxruntime fuses each with its activation.
 * Segments keep the form above: concatenating [B, n, R] activations, and slicing their gradients
 * apart, made a tfjs-wasm training step 2.2-2.7x slower.
 */
function gatedStep<T extends Tensor>(ops: Ops<T>, layer: (s: string) => T, past: T, cur: T, D: number): T {
  const w = ops.concat([layer('conv.w0'), layer('conv.w1')], 0); // [2R, 2D]: rows of x[t-d], then of x[t]
  const b = layer('conv.b');
  const rows = w.shape[0];
  const x = ops.concat([past, cur], 1);
  const filt = linear(ops, x, ops.slice(w, [0, 0], [rows, D]), ops.slice(b, [0], [D]));
  const gate = linear(ops, x, ops.slice(w, [0, D], [rows, D]), ops.slice(b, [D], [D]));
  return ops.mul(ops.tanh(filt), ops.sigmoid(gate));
}

/** A step's sum of every layer's skip projection: one matmul over the layers' gated units side by side. */
function skipSumStep<T extends Tensor>(ops: Ops<T>, p: Params<T>, gates: T[]): T {
  const layer = (i: number, s: string) => param(p, `layers.${i}.${s}`);
  const w = ops.concat(
    gates.map((_, i) => layer(i, 'skip.w')),
    0,
  ); // [L * D, S]
  const b = gates.map((_, i) => layer(i, 'skip.b')).reduce((a, v) => ops.add(a, v));
  return linear(ops, ops.concat(gates, 1), w, b);
}

function head<T extends Tensor>(ops: Ops<T>, p: Params<T>, skip: T): T {
  return linear(
    ops,
    ops.relu(linear(ops, ops.relu(skip), param(p, 'head.w1'), param(p, 'head.b1'))),
    param(p, 'head.w2'),
    param(p, 'head.b2'),
  );
}

/**
 * WaveNet over a segment of B rows x n codes (`tokens` one-hot [B * n, NUM_CODES]): causal dilated
 * convolutions of width 2, each written as two matmuls over time-shifted inputs (no convolution
 * kernels: wasm lacks some of their gradients, and matmuls trace to plain ONNX MatMul). `reset[b] = 1`
 * starts row b from empty state. Returns logits [B * n, NUM_CODES].
 */
export function wavenetForward<T extends Tensor>(
  ops: Ops<T>,
  cfg: WavenetConfig,
  p: Params<T>,
  tokens: T,
  reset: ArrayLike<number> | null,
  state: WavenetState<T>,
  /** `keep` [B, 1, 1]: multipliers applied to the histories instead of `reset` (a traced training graph's input) */
  opts: { keep?: T } = {},
): { logits: T; state: WavenetState<T> } {
  const B = state.batch;
  const n = tokens.shape[0] / B;
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`tokens (${tokens.shape[0]}) must hold a whole number of positions for batch ${B}`);
  const { residualChannels: R, dilationChannels: D } = cfg;
  const keep = opts.keep;
  const hist = keep ? state.history.map((t) => ops.mul(t, keep)) : clearRows(ops, state.history, reset);
  let h = ops.reshape(ops.embed(tokens, param(p, 'embed.weight')), [B, n, R]);
  let skip: T | null = null;
  const next: T[] = [];
  dilations(cfg).forEach((d, i) => {
    const layer = (s: string) => param(p, `layers.${i}.${s}`);
    const seq = ops.concat([hist[i], ops.stopGradient(h)], 1); // [B, d + n, R]
    // x[t-d] for the segment's positions: the first n of [history; h]. History carries no gradient;
    // within the segment the shifted input must, so it is re-sliced from h where it lies inside.
    const past =
      d >= n ? ops.slice(seq, [0, 0, 0], [B, n, R]) : ops.concat([hist[i], ops.slice(h, [0, 0, 0], [B, n - d, R])], 1);
    const g = gated(ops, layer, past, h, D);
    const s = linear(ops, g, layer('skip.w'), layer('skip.b'));
    skip = skip ? ops.add(skip, s) : s;
    next.push(ops.slice(seq, [0, n, 0], [B, d, R]));
    h = ops.add(h, linear(ops, g, layer('res.w'), layer('res.b')));
  });
  const logits = ops.reshape(head(ops, p, skip as unknown as T), [B * n, NUM_CODES]);
  return { logits, state: { batch: B, history: next } };
}

/**
 * Fast generation state (Paine et al. 2016): per layer a ring of its last d_i inputs, kept on the
 * host. A step reads each layer's x[t-d] from its ring and writes x[t] back, so it costs O(layers)
 * whatever the receptive field.
 */
export interface WavenetQueues {
  batch: number;
  rings: Float32Array[];
  /** index of the oldest entry (= x[t-d]) in each ring */
  pos: number[];
}

/** Queues holding the same history as a segment-mode state (e.g. after priming on a prompt). */
export function queuesFromState<T extends Tensor>(ops: Ops<T>, cfg: WavenetConfig, s: WavenetState<T>): WavenetQueues {
  return queuesFromHistories(
    cfg,
    s.batch,
    s.history.map((h) => ops.read(h)),
  );
}

/** Rings [d, B, R] per layer from histories [B, d, R] held on the host; the oldest entry first. */
export function queuesFromHistories(cfg: WavenetConfig, batch: number, hist: readonly Float32Array[]): WavenetQueues {
  const R = cfg.residualChannels;
  const rings = dilations(cfg).map((d, i) => {
    const h = hist[i];
    const ring = new Float32Array(d * batch * R);
    for (let b = 0; b < batch; b++)
      for (let k = 0; k < d; k++) ring.set(h.subarray((b * d + k) * R, (b * d + k + 1) * R), (k * batch + b) * R);
    return ring;
  });
  return { batch, rings, pos: rings.map(() => 0) };
}

/**
 * The arithmetic of one sample for B rows, given each layer's x[t-d] as `past[i]` [B, R]: returns
 * the logits [B, NUM_CODES] and each layer's input x[t] [B, R] for the caller's queues. Traced as the
 * ONNX step graph; the host-side queues below drive it under tfjs.
 */
export function wavenetStepCore<T extends Tensor>(
  ops: Ops<T>,
  cfg: WavenetConfig,
  p: Params<T>,
  tokens: T,
  past: readonly T[],
): { logits: T; inputs: T[] } {
  const D = cfg.dilationChannels;
  let h = ops.embed(tokens, param(p, 'embed.weight')); // [B, R]
  const gates: T[] = [];
  const inputs: T[] = [];
  dilations(cfg).forEach((_, i) => {
    const layer = (s: string) => param(p, `layers.${i}.${s}`);
    inputs.push(h);
    const g = gatedStep(ops, layer, past[i], h, D);
    gates.push(g);
    h = ops.add(h, linear(ops, g, layer('res.w'), layer('res.b')));
  });
  return { logits: head(ops, p, skipSumStep(ops, p, gates)), inputs };
}

/** One sample for each of B rows: codes [B] -> logits [B, NUM_CODES]; the queues advance in place. */
export function wavenetStep<T extends Tensor>(
  ops: Ops<T>,
  cfg: WavenetConfig,
  p: Params<T>,
  codes: ArrayLike<number>,
  q: WavenetQueues,
): T {
  const B = q.batch;
  if (codes.length !== B) throw new Error(`wavenetStep: ${codes.length} codes for batch ${B}`);
  const R = cfg.residualChannels;
  const dil = dilations(cfg);
  const past = dil.map((_, i) => ops.constant(pastOf(q, i, R).slice(), [B, R]));
  const { logits, inputs } = wavenetStepCore(ops, cfg, p, ops.constant(oneHot(codes, NUM_CODES), [B, NUM_CODES]), past);
  // One read for all layers' new inputs, then each ring's oldest entry is overwritten.
  pushQueues(q, ops.read(ops.concat(inputs, 0)), R);
  return logits;
}

/** x[t-d] of layer i for every row [B * R]: the oldest entry of its ring. */
export function pastOf(q: WavenetQueues, i: number, R: number): Float32Array {
  const at = q.pos[i] * q.batch * R;
  return q.rings[i].subarray(at, at + q.batch * R);
}

/** Writes each layer's newest input ([layers * B * R]) over its ring's oldest entry. */
export function pushQueues(q: WavenetQueues, all: Float32Array, R: number): void {
  const BR = q.batch * R;
  q.rings.forEach((ring, i) => {
    ring.set(all.subarray(i * BR, (i + 1) * BR), q.pos[i] * BR);
    q.pos[i] = (q.pos[i] + 1) % (ring.length / BR);
  });
}
