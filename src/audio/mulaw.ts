/**
 * WaveNet-style mu-law companding (van den Oord et al. 2016), mu = 255, 256 codes.
 * This is deliberately not G.711 (wavefile's toMuLaw): G.711 is a segmented approximation
 * with a different code order, and the models' 256-way softmax is defined over these codes.
 */
import { NUM_CODES, SILENCE_CODE } from '../util/codes.js';
export { NUM_CODES, SILENCE_CODE };
// The codes are 0..MU, so NUM_CODES = MU + 1 (the tests check it).
export const MU = 255;
const LOG1P_MU = Math.log1p(MU);

export function encodeSample(x: number): number {
  const c = x > 1 ? 1 : x < -1 ? -1 : x;
  const f = Math.sign(c) * (Math.log1p(MU * Math.abs(c)) / LOG1P_MU);
  return Math.floor(((f + 1) / 2) * MU + 0.5);
}

export function decodeCode(q: number): number {
  const y = (2 * q) / MU - 1;
  return (Math.sign(y) * (Math.pow(1 + MU, Math.abs(y)) - 1)) / MU;
}

/**
 * The decode table doubles as the encoder's search space: a sample's code is the q whose
 * companded midpoint bracket holds it, so encoding is a binary search over 255 thresholds in
 * the linear domain, with no log per sample. Thresholds are the exact x where the rounding in
 * encodeSample flips, so the fast path agrees with the formula bit for bit (tested).
 */
const DECODE_TABLE = new Float32Array(NUM_CODES);
for (let q = 0; q < NUM_CODES; q++) DECODE_TABLE[q] = decodeCode(q);

const THRESHOLDS = new Float64Array(MU);
for (let q = 1; q <= MU; q++) {
  // f(x) = 2(q - 0.5)/mu - 1 is where floor(... + 0.5) steps from q-1 to q; invert it for a guess,
  // then bisect to the smallest double that encodes to q, so float rounding cannot disagree.
  const f = (2 * (q - 0.5)) / MU - 1;
  const guess = (Math.sign(f) * (Math.pow(1 + MU, Math.abs(f)) - 1)) / MU;
  let lo = guess - 1e-6;
  let hi = guess + 1e-6;
  if (!(encodeSample(lo) < q)) lo = -1;
  if (!(encodeSample(hi) >= q)) hi = 1;
  for (;;) {
    const mid = lo + (hi - lo) / 2;
    if (mid === lo || mid === hi) break;
    if (encodeSample(mid) >= q) hi = mid;
    else lo = mid;
  }
  THRESHOLDS[q - 1] = hi;
}

/**
 * A uniform grid over [-1, 1] whose cells (1.5e-5 wide) are narrower than the smallest mu-law step
 * (1.7e-4), so each cell holds at most one threshold: a table lookup plus one comparison against
 * THRESHOLDS gives the exact code, with no search and no log per sample.
 */
const GRID_HALF = 1 << 16;
const GRID = new Uint8Array(2 * GRID_HALF + 1);
for (let i = 0; i < GRID.length; i++) {
  const x = i / GRID_HALF - 1;
  let c = 0;
  while (c < MU && x >= THRESHOLDS[c]) c++;
  GRID[i] = c;
}

/** Encode a whole signal; `out` may be passed to avoid allocation. */
export function muLawEncode(samples: Float32Array, out: Uint8Array = new Uint8Array(samples.length)): Uint8Array {
  if (out.length < samples.length)
    throw new Error(`muLawEncode: output holds ${out.length} codes, input has ${samples.length}`);
  const th = THRESHOLDS;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i];
    if (x >= 1) {
      out[i] = MU;
      continue;
    }
    if (x <= -1) {
      out[i] = 0;
      continue;
    }
    // NaN fails both tests above and every comparison below; treat it as silence.
    if (x !== x) {
      out[i] = SILENCE_CODE;
      continue;
    }
    let c = GRID[((x + 1) * GRID_HALF) | 0];
    // Rounding in the index can land one cell off; these settle the exact code either way.
    while (c > 0 && x < th[c - 1]) c--;
    while (c < MU && x >= th[c]) c++;
    out[i] = c;
  }
  return out;
}

export function muLawDecode(
  codes: ArrayLike<number>,
  out: Float32Array = new Float32Array(codes.length),
): Float32Array {
  if (out.length < codes.length)
    throw new Error(`muLawDecode: output holds ${out.length} samples, input has ${codes.length}`);
  for (let i = 0; i < codes.length; i++) {
    const q = codes[i];
    if (!(q >= 0 && q <= MU) || q !== Math.floor(q))
      throw new Error(`muLawDecode: code ${q} at index ${i} is outside 0..${MU}`);
    out[i] = DECODE_TABLE[q];
  }
  return out;
}
