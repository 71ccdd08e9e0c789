import type { Ops, Tensor } from '../engine/ops.js';
import { compress, compressionParams } from './compression.js';
import type { TransformerConfig } from './config.js';
import { anyReset, clearRows, type Params } from './layers.js';
import { attentionReconstructionLoss, autoencodingLoss } from './loss.js';
import { attentionMask, relativeAttention } from './relative-attention.js';
import { attentionNorm, blockWeights, type BlockWeights, embed, feedForward, outputHead } from './transformer-block.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Carried state of the Compressive Transformer (Transformer-XL when n_cm = 0): per layer the memory
 * [B, n_m, d] and compressed memory [B, n_cm, d] (stored without gradient), and per batch row how
 * many of the newest slots hold real history. Validity is always a suffix: after a reset, memory
 * fills from the newest end, and compressed memory only receives fully valid windows.
 */
export interface CtState<T extends Tensor = Tensor> {
  batch: number;
  mem: T[];
  cmem: T[];
  memValid: Int32Array;
  cmemValid: Int32Array;
}

export interface CtOutput<T extends Tensor = Tensor> {
  /** [B * n, NUM_CODES] */
  logits: T;
  state: CtState<T>;
  /** mean auxiliary compression loss over layers, or null when none is configured or computable */
  aux: T | null;
  /** per layer attention probabilities [B, H, n, K], when asked for (tests, most-used diagnostics) */
  probs?: T[];
}

export function initialState<T extends Tensor>(ops: Ops<T>, cfg: TransformerConfig, batch: number): CtState<T> {
  const d = cfg.dModel;
  const zeros = (len: number) => ops.constant(new Float32Array(batch * len * d), [batch, len, d]);
  return {
    batch,
    mem: Array.from({ length: cfg.layers }, () => zeros(cfg.memory)),
    cmem: Array.from({ length: cfg.layers }, () => zeros(cfg.compressedMemory)),
    memValid: new Int32Array(batch),
    cmemValid: new Int32Array(batch),
  };
}

/** Every tensor a state holds, so a caller can dispose the previous state after a step. */
export function stateTensors<T extends Tensor>(s: CtState<T>): T[] {
  return [...s.mem, ...s.cmem];
}

export interface ForwardOptions<T extends Tensor = Tensor> {
  /**
   * Additive attention mask [B, 1, n, K]; by default made from the state's validity counters. A
   * traced graph passes its `mask` input here.
   */
  mask?: T;
  /**
   * [B, 1, 1] multipliers applied to the carried memories instead of `reset` (0 clears a row): a
   * traced training graph passes its input. The validity counters still follow `reset`.
   */
  keep?: T;
  /** the auxiliary loss's counted rows as tensors (a traced training graph), instead of from validity */
  auxRows?: { mask: T; invCount: T };
  keepProbs?: boolean;
  /** training only: residual dropout at cfg.dropout with masks drawn from this generator */
  dropoutRng?: { nextFloat(): number };
  /** training only: the next dropout mask [B, n, d], already scaled (a traced graph's input) */
  dropMask?: () => T;
}

/** Layer weights as the auxiliary attention loss reads them: frozen, so that loss trains only f_c. */
function frozen<T extends Tensor>(ops: Ops<T>, w: BlockWeights<T>): BlockWeights<T> {
  const sg = (t: T) => ops.stopGradient(t);
  return {
    ...w,
    ln1: { gamma: sg(w.ln1.gamma), beta: sg(w.ln1.beta) },
    attn: { ...w.attn, wq: sg(w.attn.wq), wk: sg(w.attn.wk), wv: sg(w.attn.wv) },
  };
}

/**
 * One segment through the model (paper, Algorithm 1). `tokens` [B * n, NUM_CODES] are the one-hot
 * input codes of B rows; `reset[b] = 1` clears row b's memories first (a new file starts). Pure:
 * the previous state is not modified.
 */
export function ctForward<T extends Tensor>(
  ops: Ops<T>,
  cfg: TransformerConfig,
  p: Params<T>,
  tokens: T,
  reset: ArrayLike<number> | null,
  state: CtState<T>,
  opts: ForwardOptions<T> = {},
): CtOutput<T> {
  const B = state.batch;
  const n = tokens.shape[0] / B;
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`tokens (${tokens.shape[0]}) must hold a whole number of positions for batch ${B}`);
  const { dModel: d, heads: H, dHead: dh, memory: nm, compressedMemory: ncm, compressionRate: c } = cfg;
  if (ncm > 0 && n % c !== 0) throw new Error(`segment length ${n} must be a multiple of the compression rate ${c}`);
  const K = ncm + nm + n;

  const memValid = Int32Array.from(state.memValid);
  const cmemValid = Int32Array.from(state.cmemValid);
  const keep = opts.keep;
  const mem = keep ? state.mem.map((m) => ops.mul(m, keep)) : clearRows(ops, state.mem, reset);
  const cmem = keep ? state.cmem.map((m) => ops.mul(m, keep)) : clearRows(ops, state.cmem, reset);
  if (anyReset(reset)) for (let b = 0; b < B; b++) if (reset[b]) memValid[b] = cmemValid[b] = 0;
  const mask = opts.mask ?? ops.constant(segmentMask(cfg, B, n, memValid, cmemValid), [B, 1, n, K]);

  const rate = opts.dropoutRng || opts.dropMask ? cfg.dropout : 0;
  // Masks are data (constants), drawn from the caller's seeded generator: a resumed run redraws them identically.
  const drop = (t: T): T => {
    if (rate <= 0) return t;
    if (opts.dropMask) return ops.mul(t, opts.dropMask());
    return ops.mul(t, ops.constant(dropoutMask(opts.dropoutRng!, rate, B * n * d), [B, n, d]));
  };
  let x = ops.reshape(embed(ops, p, tokens), [B, n, d]);
  const newMem: T[] = [];
  const newCmem: T[] = [];
  const auxTerms: T[] = [];
  const probsOut: T[] = [];
  // Old memories of a row are compressible once every one of them is real history.
  const oldValid = Array.from({ length: B }, (_, b) => oldMemoriesValid(cfg, n, memValid[b]));

  for (let i = 0; i < cfg.layers; i++) {
    const w = blockWeights(p, i);
    const h = x;
    const hMem = ops.stopGradient(h);
    const parts = [...(ncm > 0 ? [cmem[i]] : []), ...(nm > 0 ? [mem[i]] : []), h];
    const context = parts.length > 1 ? ops.concat(parts, 1) : h;
    const attn = relativeAttention(ops, w.attn, attentionNorm(ops, w, h), attentionNorm(ops, w, context), mask, {
      B,
      n,
      K,
      H,
      dh,
    });
    if (opts.keepProbs) probsOut.push(attn.probs);
    x = feedForward(ops, w, ops.add(h, drop(attn.out)), drop);

    const usage = cfg.compression === 'most-used' && ncm > 0 ? oldUsage(ops, attn.probs, B, n, ncm) : undefined;
    const upd = updateMemory(ops, cfg, p, i, mem[i], cmem[i], hMem, usage);
    newMem.push(upd.mem);
    newCmem.push(upd.cmem);
    if (!upd.old || !upd.compressed || cfg.auxLoss === 'none') continue;
    const counted = oldValid.map((v) => (v === n ? 1 : 0));
    const count = counted.reduce((a: number, r) => a + r, 0);
    if (count === 0 && !opts.auxRows) continue;
    const rows = opts.auxRows ?? { mask: ops.constant(Float32Array.from(counted), [B, 1, 1]), count };
    if (cfg.auxLoss === 'attention') {
      auxTerms.push(attentionReconstructionLoss(ops, frozen(ops, w), hMem, upd.old, upd.compressed, rows, H, dh));
    } else {
      const cp = compressionParams(p, i);
      if (!cp.dw || !cp.db) throw new Error(`auto-encoding loss needs layers.${i}.decompress.w/b`);
      auxTerms.push(autoencodingLoss(ops, upd.old, upd.compressed, c, { w: cp.dw, b: cp.db }, rows));
    }
  }

  const logits = ops.reshape(outputHead(ops, p, x), [B * n, NUM_CODES]);
  advanceValidity(cfg, n, memValid, cmemValid);
  const aux = auxTerms.length
    ? ops.scale(auxTerms.length === 1 ? auxTerms[0] : auxTerms.reduce((a, t) => ops.add(a, t)), 1 / auxTerms.length)
    : null;
  return {
    logits,
    state: { batch: B, mem: newMem, cmem: newCmem, memValid, cmemValid },
    aux,
    probs: opts.keepProbs ? probsOut : undefined,
  };
}

/**
 * Algorithm 1's memory update for layer i after a segment whose layer inputs were `hMem` [B, n, d]
 * (already without gradient): the n oldest of [mem; h] leave memory and are compressed into the
 * compressed-memory FIFO. Shared by segment mode and by generation's memory roll.
 */
export function updateMemory<T extends Tensor>(
  ops: Ops<T>,
  cfg: TransformerConfig,
  p: Params<T>,
  i: number,
  mem: T,
  cmem: T,
  hMem: T,
  usage?: T,
): { mem: T; cmem: T; old?: T; compressed?: T } {
  const [B, n, d] = hMem.shape;
  const { memory: nm, compressedMemory: ncm, compressionRate: c } = cfg;
  const seq = nm > 0 ? ops.concat([mem, hMem], 1) : hMem;
  const nextMem = nm > 0 ? ops.slice(seq, [0, n, 0], [B, nm, d]) : ops.constant(new Float32Array(0), [B, 0, d]);
  if (ncm === 0) return { mem: nextMem, cmem };
  const old = ops.slice(seq, [0, 0, 0], [B, n, d]);
  const compressed = compress(ops, cfg.compression, old, c, compressionParams(p, i), usage);
  const nextCmem = ops.stopGradient(ops.slice(ops.concat([cmem, compressed], 1), [0, n / c, 0], [B, ncm, d]));
  return { mem: nextMem, cmem: nextCmem, old, compressed };
}

/**
 * Which keys of [compressed memory; memory] hold real history for row b: validity is a suffix of
 * each (memory fills from its newest end after a reset).
 */
export function memoryKeyValid(cfg: TransformerConfig, j: number, memValid: number, cmemValid: number): boolean {
  const { memory: nm, compressedMemory: ncm } = cfg;
  return j < ncm ? j >= ncm - cmemValid : j - ncm >= nm - memValid;
}

/** Additive mask [B, 1, n, K] of a segment: causal within it, empty memory slots hidden. */
export function segmentMask(
  cfg: TransformerConfig,
  B: number,
  n: number,
  memValid: Int32Array,
  cmemValid: Int32Array,
): Float32Array {
  const M = cfg.memory + cfg.compressedMemory;
  return attentionMask(B, n, M + n, (b, j) => j >= M || memoryKeyValid(cfg, j, memValid[b], cmemValid[b]));
}

/**
 * How many of the n memories a segment pushes out of a row's memory are real history, given how
 * many memory slots were valid before it: compression (and its aux loss) counts them.
 */
export function oldMemoriesValid(cfg: TransformerConfig, n: number, memValid: number): number {
  return Math.max(0, Math.min(n, n + memValid - cfg.memory));
}

/**
 * A residual-dropout mask of `size` entries, 0 or 1 / (1 - rate), drawn from the caller's seeded
 * generator: a resumed run, and the onnxruntime trainer feeding the same draws, get the same masks.
 */
export function dropoutMask(rng: { nextFloat(): number }, rate: number, size: number): Float32Array {
  const m = new Float32Array(size);
  for (let i = 0; i < size; i++) m[i] = rng.nextFloat() < rate ? 0 : 1 / (1 - rate);
  return m;
}

/** Validity counters after a segment of n positions (in place): what Algorithm 1's update keeps. */
export function advanceValidity(cfg: TransformerConfig, n: number, memValid: Int32Array, cmemValid: Int32Array): void {
  const { memory: nm, compressedMemory: ncm, compressionRate: c } = cfg;
  for (let b = 0; b < memValid.length; b++) {
    const oldValid = oldMemoriesValid(cfg, n, memValid[b]);
    if (ncm > 0) cmemValid[b] = Math.min(ncm, cmemValid[b] + Math.floor(oldValid / c));
    memValid[b] = Math.min(nm, memValid[b] + n);
  }
}

/** Attention received by each old memory (keys ncm .. ncm+n-1), averaged over heads and queries: [B, n]. */
function oldUsage<T extends Tensor>(ops: Ops<T>, probs: T, B: number, n: number, ncm: number): T {
  return ops.slice(ops.mean(probs, [1, 2]), [0, ncm], [B, n]);
}
