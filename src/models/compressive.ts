import type { Ops, Tensor } from '../engine/ops.js';
import { compress, compressionParams, decompress } from './compression.js';
import type { TransformerConfig } from './config.js';
import { layerNorm, linear, oneHot, param, type Params } from './layers.js';
import { attentionMask, contentAttention, relativeAttention } from './relative-attention.js';
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

/**
 * One segment through the model (paper, Algorithm 1). `tokens` [B * n] are the input codes of B
 * rows; `reset[b] = 1` clears row b's memories first (a new file starts). Pure: the previous
 * state is not modified.
 */
export interface ForwardOptions {
  keepProbs?: boolean;
  /** training only: residual dropout at cfg.dropout with masks drawn from this generator */
  dropoutRng?: { nextFloat(): number };
}

export function ctForward<T extends Tensor>(
  ops: Ops<T>,
  cfg: TransformerConfig,
  p: Params<T>,
  tokens: ArrayLike<number>,
  reset: ArrayLike<number> | null,
  state: CtState<T>,
  opts: ForwardOptions = {},
): CtOutput<T> {
  const B = state.batch;
  const n = tokens.length / B;
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`tokens (${tokens.length}) must hold a whole number of positions for batch ${B}`);
  const { dModel: d, heads: H, dHead: dh, memory: nm, compressedMemory: ncm, compressionRate: c } = cfg;
  if (ncm > 0 && n % c !== 0) throw new Error(`segment length ${n} must be a multiple of the compression rate ${c}`);
  const K = ncm + nm + n;

  const memValid = Int32Array.from(state.memValid);
  const cmemValid = Int32Array.from(state.cmemValid);
  let mem = state.mem;
  let cmem = state.cmem;
  if (reset && Array.prototype.some.call(reset, (r: number) => r)) {
    const keep = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      keep[b] = reset[b] ? 0 : 1;
      if (reset[b]) memValid[b] = cmemValid[b] = 0;
    }
    const k = ops.constant(keep, [B, 1, 1]);
    mem = mem.map((m) => ops.mul(m, k));
    cmem = cmem.map((m) => ops.mul(m, k));
  }
  const mask = ops.input('mask', segmentMask(cfg, B, n, memValid, cmemValid), [B, 1, n, K]);

  const rate = opts.dropoutRng ? cfg.dropout : 0;
  // Masks are data (constants), drawn from the caller's seeded generator: a resumed run redraws them identically.
  const drop = (t: T): T => {
    if (rate <= 0) return t;
    const m = new Float32Array(B * n * d);
    for (let i = 0; i < m.length; i++) m[i] = opts.dropoutRng!.nextFloat() < rate ? 0 : 1 / (1 - rate);
    return ops.mul(t, ops.constant(m, [B, n, d]));
  };
  let x = ops.reshape(
    ops.matMul(ops.input('tokens', oneHot(tokens, NUM_CODES), [B * n, NUM_CODES]), param(p, 'embed.weight')),
    [B, n, d],
  );
  const newMem: T[] = [];
  const newCmem: T[] = [];
  const auxTerms: T[] = [];
  const probsOut: T[] = [];
  // Old memories of a row are compressible once every one of them is real history.
  const oldValid = Array.from({ length: B }, (_, b) => Math.max(0, Math.min(n, n + memValid[b] - nm)));

  for (let i = 0; i < cfg.layers; i++) {
    const layer = (s: string) => param(p, `layers.${i}.${s}`);
    const h = x;
    const hMem = ops.stopGradient(h);
    const parts = [...(ncm > 0 ? [cmem[i]] : []), ...(nm > 0 ? [mem[i]] : []), h];
    const context = parts.length > 1 ? ops.concat(parts, 1) : h;
    const ln1 = (t: T) => layerNorm(ops, t, layer('ln1.gamma'), layer('ln1.beta'));
    const attn = relativeAttention(
      ops,
      {
        wq: layer('attn.wq'),
        wk: layer('attn.wk'),
        wv: layer('attn.wv'),
        wr: layer('attn.wr'),
        u: layer('attn.u'),
        v: layer('attn.v'),
        wo: layer('attn.wo'),
      },
      ln1(h),
      ln1(context),
      mask,
      { B, n, K, H, dh },
    );
    if (opts.keepProbs) probsOut.push(attn.probs);
    x = ops.add(h, drop(attn.out));
    const ff = linear(
      ops,
      ops.relu(linear(ops, layerNorm(ops, x, layer('ln2.gamma'), layer('ln2.beta')), layer('ff.w1'), layer('ff.b1'))),
      layer('ff.w2'),
      layer('ff.b2'),
    );
    x = ops.add(x, drop(ff));

    const usage = cfg.compression === 'most-used' && ncm > 0 ? oldUsage(ops, attn.probs, B, H, n, K, ncm) : undefined;
    const upd = updateMemory(ops, cfg, p, i, mem[i], cmem[i], hMem, usage);
    newMem.push(upd.mem);
    newCmem.push(upd.cmem);
    if (!upd.old || !upd.compressed) continue;
    const { old, compressed } = upd;
    const cp = compressionParams(p, i);

    const rows = oldValid.map((v) => (v === n ? 1 : 0));
    const nRows = rows.reduce((a: number, r) => a + r, 0);
    if (cfg.auxLoss === 'none' || nRows === 0) continue;
    const rowMask = ops.constant(Float32Array.from(rows), [B, 1, 1]);
    if (cfg.auxLoss === 'attention') {
      // Algorithm 2: the layer's own attention, frozen, over old memories vs over their compression.
      const sg = (s: string) => ops.stopGradient(layer(s));
      const lnSg = (t: T) => layerNorm(ops, t, sg('ln1.gamma'), sg('ln1.beta'));
      const q = lnSg(hMem);
      const target = contentAttention(ops, sg('attn.wq'), sg('attn.wk'), sg('attn.wv'), q, lnSg(old), H, dh);
      const estimate = contentAttention(ops, sg('attn.wq'), sg('attn.wk'), sg('attn.wv'), q, lnSg(compressed), H, dh);
      const diff = ops.mul(ops.reshape(ops.sub(target, estimate), [B, H * n * dh, 1]), rowMask);
      auxTerms.push(ops.scale(ops.sum(ops.square(diff), [0, 1, 2]), 1 / (nRows * H * n * dh)));
    } else {
      if (!cp.dw || !cp.db) throw new Error(`auto-encoding loss needs layers.${i}.decompress.w/b`);
      const recon = decompress(ops, compressed, c, cp.dw, cp.db);
      const diff = ops.mul(ops.sub(old, recon), rowMask);
      auxTerms.push(ops.scale(ops.sum(ops.square(diff), [0, 1, 2]), 1 / (nRows * n * d)));
    }
  }

  const logits = ops.reshape(
    linear(
      ops,
      layerNorm(ops, x, param(p, 'ln_f.gamma'), param(p, 'ln_f.beta')),
      param(p, 'head.weight'),
      param(p, 'head.bias'),
    ),
    [B * n, NUM_CODES],
  );
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
  usage?: Float32Array,
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

/** Validity counters after a segment of n positions (in place): what Algorithm 1's update keeps. */
export function advanceValidity(cfg: TransformerConfig, n: number, memValid: Int32Array, cmemValid: Int32Array): void {
  const { memory: nm, compressedMemory: ncm, compressionRate: c } = cfg;
  for (let b = 0; b < memValid.length; b++) {
    const oldValid = Math.max(0, Math.min(n, n + memValid[b] - nm));
    if (ncm > 0) cmemValid[b] = Math.min(ncm, cmemValid[b] + Math.floor(oldValid / c));
    memValid[b] = Math.min(nm, memValid[b] + n);
  }
}

/** Attention received by each old memory (keys ncm .. ncm+n-1), averaged over heads and queries. */
function oldUsage<T extends Tensor>(
  ops: Ops<T>,
  probs: T,
  B: number,
  H: number,
  n: number,
  K: number,
  ncm: number,
): Float32Array {
  const all = ops.read(ops.mean(probs, [1, 2])); // [B, K]
  const out = new Float32Array(B * n);
  for (let b = 0; b < B; b++) out.set(all.subarray(b * K + ncm, b * K + ncm + n), b * n);
  return out;
}

/** Mean next-code NLL (nats) over positions with mask 1. */
export function nllLoss<T extends Tensor>(
  ops: Ops<T>,
  logits: T,
  targets: ArrayLike<number>,
  mask: ArrayLike<number>,
): T {
  const N = targets.length;
  const pick = oneHot(targets, NUM_CODES);
  let count = 0;
  for (let i = 0; i < N; i++) {
    if (!mask[i]) pick.fill(0, i * NUM_CODES, (i + 1) * NUM_CODES);
    else count++;
  }
  const picked = ops.sum(ops.mul(ops.logSoftmax(logits), ops.constant(pick, [N, NUM_CODES])), [0, 1]);
  return ops.scale(picked, -1 / Math.max(1, count));
}
