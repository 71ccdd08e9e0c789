/**
 * Drawing one mu-law code per row from a model's logits: temperature, then
 * optional top-k, then optional top-p (nucleus) over what top-k kept. All arithmetic is float64 on
 * buffers the Sampler owns, because it runs once per row per generated sample. The same arithmetic
 * as ONNX nodes is `Ops.sample` in a traced graph (engine/traced-sampling.ts): both must draw the
 * same code from the same uniform.
 */
import { NUM_CODES } from '../util/codes.js';

/** Where a sampler gets its uniforms in [0, 1): data/rng's Rng, or one fixed draw. */
export interface UniformSource {
  nextFloat(): number;
}

export interface SamplingOptions {
  /** 0 (or below GREEDY_BELOW) is greedy argmax; 1 samples the model's own distribution */
  temperature: number;
  /** keep only the k most likely codes (1..256) */
  topK?: number;
  /** keep the smallest most-likely set whose probability reaches p, in (0, 1] */
  topP?: number;
}

/** Dividing by a temperature this small overflows exp's useful range; argmax is its limit anyway. */
export const GREEDY_BELOW = 1e-6;

/** Throws a RangeError naming the CLI flag, so `generate` can show it as is. */
export function validateSamplingOptions(o: SamplingOptions): void {
  const t = o.temperature;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
    throw new RangeError(`--temperature must be >= 0 (a finite number), got ${t}`);
  const k = o.topK;
  if (k !== undefined && (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > NUM_CODES)) {
    throw new RangeError(`--top-k must be an integer in 1..${NUM_CODES}, got ${k}`);
  }
  const p = o.topP;
  if (p !== undefined && (typeof p !== 'number' || !(p > 0 && p <= 1)))
    throw new RangeError(`--top-p must be in (0, 1], got ${p}`);
}

export class Sampler {
  readonly greedy: boolean;
  private readonly invT: number;
  private readonly k: number;
  private readonly p: number;
  /** scaled logits, then unnormalised probabilities, of the row being sampled */
  private readonly z = new Float64Array(NUM_CODES);
  private readonly w = new Float64Array(NUM_CODES);
  /** the weights in ascending order, only when truncating */
  private readonly sorted = new Float64Array(NUM_CODES);

  constructor(options: SamplingOptions) {
    validateSamplingOptions(options);
    this.greedy = options.temperature < GREEDY_BELOW;
    this.invT = this.greedy ? 1 : 1 / options.temperature;
    this.k = options.topK ?? NUM_CODES;
    this.p = options.topP ?? 1;
  }

  /**
   * One code per row into out[0..batch). Rows draw from `rng` in row order, one nextFloat each
   * (greedy draws none), so a seed fixes the whole run.
   */
  sampleRows(logits: Float32Array, batch: number, rng: UniformSource, out: Int32Array): void {
    if (logits.length !== batch * NUM_CODES)
      throw new Error(`sampler: expected ${batch} x ${NUM_CODES} logits, got ${logits.length}`);
    for (let r = 0; r < batch; r++) out[r] = this.sampleRow(logits, r * NUM_CODES, rng);
  }

  /** The code drawn for the row of `logits` starting at `offset`. */
  sampleRow(logits: ArrayLike<number>, offset: number, rng: UniformSource): number {
    const z = this.z;
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < NUM_CODES; c++) {
      const v = logits[offset + c];
      // NaN would poison every comparison silently; +Infinity leaves softmax undefined.
      if (v !== v || v === Infinity) throw new Error(`sampler: logit for code ${c} is ${v}`);
      z[c] = v * this.invT;
      if (z[c] > max) {
        max = z[c];
        arg = c;
      } // strict: ties keep the lowest code
    }
    if (max === -Infinity) throw new Error('sampler: every logit is -Infinity');
    if (this.greedy) return arg;

    const w = this.w;
    let total = 0;
    for (let c = 0; c < NUM_CODES; c++) total += w[c] = Math.exp(z[c] - max);

    if (this.k >= NUM_CODES && this.p >= 1) return this.draw(rng.nextFloat() * total);

    // Truncation needs only the smallest kept weight: a native sort of the weights finds it
    // several times faster than ordering the codes with a comparator.
    const sorted = this.sorted;
    sorted.set(w);
    sorted.sort(); // ascending: the i-th most likely weight is sorted[NUM_CODES - 1 - i]
    let kept = this.k;
    if (this.p < 1) {
      // Nucleus over the top-k distribution: compare unnormalised mass against p * (top-k mass).
      let mass = 0;
      for (let i = 0; i < kept; i++) mass += sorted[NUM_CODES - 1 - i];
      const target = this.p * mass;
      let cum = 0;
      for (let i = 0; i < kept; i++) {
        cum += sorted[NUM_CODES - 1 - i];
        if (cum >= target) {
          kept = i + 1;
          break;
        }
      }
    }
    const floor = sorted[NUM_CODES - kept];
    // Codes above the floor are all kept; of those equal to it, the lowest codes fill the rest.
    let ties = kept;
    for (let c = 0; c < NUM_CODES; c++) if (w[c] > floor) ties--;
    total = 0;
    for (let c = 0; c < NUM_CODES; c++) {
      if (w[c] < floor || (w[c] === floor && ties-- <= 0)) w[c] = 0;
      total += w[c];
    }
    return this.draw(rng.nextFloat() * total);
  }

  private draw(u: number): number {
    const w = this.w;
    let cum = 0;
    let last = 0;
    for (let c = 0; c < NUM_CODES; c++) {
      if (w[c] === 0) continue;
      cum += w[c];
      last = c;
      if (cum > u) return c;
    }
    return last; // rounding left u at the very top: the last code with any mass
  }
}

/** The uniform a row's two 16-bit halves stand for (Ops.sample's `draws`): exactly Rng.nextFloat's value. */
export function uniformOfHalves(hi: number, lo: number): number {
  return (hi * 65536 + lo) / 4294967296;
}

/** A 32-bit draw as the two float32-exact halves Ops.sample takes. */
export function halvesOfDraw(u32: number, out: Float32Array, at: number): void {
  out[at] = Math.floor(u32 / 65536);
  out[at + 1] = u32 % 65536;
}

/**
 * Ops.sample computed on the host (eager engines): one-hot rows [B * V] of the codes `Sampler`
 * draws, a zero row where the sampler refuses the logits (NaN, +Infinity, all -Infinity).
 */
export function sampleOneHot(
  logits: ArrayLike<number>,
  draws: ArrayLike<number>,
  batch: number,
  opts: SamplingOptions,
): Float32Array {
  const sampler = new Sampler(opts);
  const out = new Float32Array(batch * NUM_CODES);
  for (let b = 0; b < batch; b++) {
    const u = uniformOfHalves(draws[2 * b], draws[2 * b + 1]);
    try {
      out[b * NUM_CODES + sampler.sampleRow(logits, b * NUM_CODES, { nextFloat: () => u })] = 1;
    } catch {
      // left zero: the caller reports the row
    }
  }
  return out;
}
