/**
 * The names, shapes and initialisation of every transformer parameter. This list is the contract
 * between the training engine, the safetensors files and the ONNX export (docs/safetensors.md), so
 * its order and names are stable. Matrices are [in, out]: y = x W.
 */
import { Rng } from '../data/rng.js';
import { TRAINABLE_COMPRESSIONS, type TransformerConfig } from './config.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * How a parameter starts: 'normal' is N(0, std^2) with the std the caller passes (the config's
 * initStd); `{ normal }` and `{ uniform }` carry their own scale (N(0, normal^2), U(-uniform, uniform)),
 * for families whose initialisation depends on each layer's fan-in.
 */
export type ParamInit = 'normal' | 'zeros' | 'ones' | { normal: number } | { uniform: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
  /** Trained by the auxiliary loss only (the compression network f_c and its decoder g). */
  compression: boolean;
}

/** Every parameter of the model, in a deterministic order (the order of the safetensors files). */
export function transformerParamSpec(c: TransformerConfig): ParamSpec[] {
  const d = c.dModel;
  const hd = c.heads * c.dHead;
  const f = c.dFF;
  const out: ParamSpec[] = [];
  const p = (name: string, shape: number[], init: ParamSpec['init'], compression = false) =>
    out.push({ name, shape, init, compression });
  const hasCompressNet = c.compressedMemory > 0 && TRAINABLE_COMPRESSIONS.includes(c.compression);
  const hasDecoder = hasCompressNet && c.auxLoss === 'autoencode';

  p('embed.weight', [NUM_CODES, d], 'normal');
  for (let i = 0; i < c.layers; i++) {
    const l = `layers.${i}`;
    p(`${l}.ln1.gamma`, [d], 'ones');
    p(`${l}.ln1.beta`, [d], 'zeros');
    p(`${l}.attn.wq`, [d, hd], 'normal');
    p(`${l}.attn.wk`, [d, hd], 'normal');
    p(`${l}.attn.wv`, [d, hd], 'normal');
    p(`${l}.attn.wr`, [d, hd], 'normal');
    // Zero biases: at init the relative-attention score reduces to plain q.k + q.R.
    p(`${l}.attn.u`, [c.heads, c.dHead], 'zeros');
    p(`${l}.attn.v`, [c.heads, c.dHead], 'zeros');
    p(`${l}.attn.wo`, [hd, d], 'normal');
    p(`${l}.ln2.gamma`, [d], 'ones');
    p(`${l}.ln2.beta`, [d], 'zeros');
    p(`${l}.ff.w1`, [d, f], 'normal');
    p(`${l}.ff.b1`, [f], 'zeros');
    p(`${l}.ff.w2`, [f, d], 'normal');
    p(`${l}.ff.b2`, [d], 'zeros');
    if (hasCompressNet) {
      // A kernel = stride = c convolution is one matmul over c consecutive memories, flattened.
      p(`${l}.compress.w`, [c.compressionRate * d, d], 'normal', true);
      p(`${l}.compress.b`, [d], 'zeros', true);
    }
    if (hasDecoder) {
      p(`${l}.decompress.w`, [d, c.compressionRate * d], 'normal', true);
      p(`${l}.decompress.b`, [c.compressionRate * d], 'zeros', true);
    }
  }
  p('ln_f.gamma', [d], 'ones');
  p('ln_f.beta', [d], 'zeros');
  p('head.weight', [d, NUM_CODES], 'normal');
  p('head.bias', [NUM_CODES], 'zeros');
  return out;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function paramCount(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + shapeSize(s.shape), 0);
}

// Two FNV-1a variants give 53 bits, so per-parameter streams collide only by astronomically bad luck.
function fnv1a(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The seed of one parameter's stream. It depends only on the run seed and the name, so adding or
 * removing a parameter (e.g. the compression network) leaves every other parameter unchanged.
 */
export function paramSeed(seed: number, name: string): number {
  const key = `${seed}\u0000${name}`;
  const hi = fnv1a(key, 0x811c9dc5) & 0x1fffff;
  const lo = fnv1a(key, 0x050c5d1f);
  return hi * 0x1_0000_0000 + lo;
}

function fillNormal(out: Float32Array, rng: Rng, std: number): void {
  // Box-Muller, using both outputs of each pair. 1 - u keeps the log argument in (0, 1].
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * std;
    const t = 2 * Math.PI * rng.nextFloat();
    out[i] = r * Math.cos(t);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(t);
  }
}

function fillUniform(out: Float32Array, rng: Rng, bound: number): void {
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.nextFloat() - 1) * bound;
}

/** Fresh parameters as each spec's `init` says (`std` is the scale of plain 'normal'); reproducible from seed. */
export function initParams(specs: readonly ParamSpec[], seed: number, std: number): Map<string, Float32Array> {
  if (!Number.isSafeInteger(seed)) throw new Error(`initParams: seed must be a safe integer, got ${seed}`);
  if (!(std > 0) || !Number.isFinite(std)) throw new Error(`initParams: std must be a positive number, got ${std}`);
  const params = new Map<string, Float32Array>();
  for (const s of specs) {
    if (params.has(s.name)) throw new Error(`initParams: duplicate parameter name '${s.name}'`);
    const a = new Float32Array(shapeSize(s.shape));
    const rng = () => new Rng(paramSeed(seed, s.name));
    if (s.init === 'ones') a.fill(1);
    else if (s.init === 'normal') fillNormal(a, rng(), std);
    else if (typeof s.init === 'object' && 'normal' in s.init) fillNormal(a, rng(), s.init.normal);
    else if (typeof s.init === 'object') fillUniform(a, rng(), s.init.uniform);
    params.set(s.name, a);
  }
  return params;
}

function millions(n: number): string {
  return `${(n / 1e6).toFixed(2)}M`;
}

/** One line for logs, e.g. "4 layers, d 128, 4 heads x 32, ffn 512: 1.19M parameters (0.26M in compression)". */
export function describeParams(c: TransformerConfig): string {
  const specs = transformerParamSpec(c);
  const comp = paramCount(specs.filter((s) => s.compression));
  const head =
    `${c.layers} layers, d ${c.dModel}, ${c.heads} heads x ${c.dHead}, ffn ${c.dFF}: ` +
    `${millions(paramCount(specs))} parameters`;
  return comp > 0 ? `${head} (${millions(comp)} in compression)` : head;
}
