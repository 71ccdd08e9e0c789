/**
 * Band-limited resampling of mono Float32 audio: a Kaiser-windowed sinc evaluated at the
 * rational ratio L/M = toRate/fromRate (reduced by gcd), as a polyphase filter bank.
 *
 * Timing: output sample k sits exactly at input time k * M / L (in input samples), so there
 * is no group delay; samples outside the signal are zeros.
 *
 * Output length: ceil(N * L / M) for N input samples, i.e. one output for every output
 * instant that falls inside the input span [0, N). Equal rates return a copy.
 *
 * Memory: the bank holds L phases of T taps. When L * T would exceed BANK_LIMIT floats
 * (e.g. 44101 -> 16000, where L = 16000), taps are instead computed per output sample by
 * linear interpolation in a densely sampled kernel table (TABLE_RES points per zero
 * crossing), so memory is bounded by the filter length, not by L.
 */

export interface ResamplerOptions {
  /** half-length of the sinc filter in zero crossings of the lower rate, default 16 */
  zeroCrossings?: number;
  /** Kaiser window beta, default 8.6 */
  beta?: number;
  /** cutoff as a fraction of the lower Nyquist, default 0.95 */
  rolloff?: number;
}

const BANK_LIMIT = 1 << 20;
const TABLE_RES = 1024;

interface Plan {
  L: number;
  M: number;
  /** M = q * L + r: lets the read position advance without a division per sample. */
  q: number;
  r: number;
  /** Taps span input indices n-K+1 .. n+K (T = 2K) around output k, where n = floor(k*M/L). */
  K: number;
  T: number;
  /** Exactly one of bank (L phases x T taps) and table (kernel sampled TABLE_RES per zero crossing) is set. */
  bank: Float32Array | null;
  table: Float64Array | null;
  tableScale: number;
  scratch: Float32Array;
  tmp: Float64Array;
}

function checkRate(name: string, rate: number): void {
  if (typeof rate !== 'number' || !Number.isSafeInteger(rate) || rate <= 0) {
    throw new Error(`resample: ${name} must be a positive integer, got ${String(rate)}`);
  }
}

function checkOpt(name: string, v: number, min: number, max: number): number {
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`resample: invalid option ${name}=${String(v)}`);
  return v;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0, by its power series (converges for all x). */
export function besselI0(x: number): number {
  const h = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; k < 500; k++) {
    term *= h / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function makePlan(fromRate: number, toRate: number, opts: ResamplerOptions): Plan {
  const zc = checkOpt('zeroCrossings', opts.zeroCrossings ?? 16, 1, 1024);
  const beta = checkOpt('beta', opts.beta ?? 8.6, 0, 100);
  const rolloff = checkOpt('rolloff', opts.rolloff ?? 0.95, 0.01, 1);
  const g = gcd(fromRate, toRate);
  const L = toRate / g;
  const M = fromRate / g;
  // Everything is measured in input samples; S is one zero-crossing spacing of the lower rate.
  const S = fromRate / Math.min(fromRate, toRate);
  const W = zc * S;
  const fc = (rolloff * Math.min(fromRate, toRate)) / 2 / fromRate;
  const i0b = besselI0(beta);
  const kernel = (tau: number): number => {
    const x = tau / W;
    if (x <= -1 || x >= 1) return 0;
    const s = 2 * fc * tau;
    const sinc = s === 0 ? 1 : Math.sin(Math.PI * s) / (Math.PI * s);
    return (sinc * besselI0(beta * Math.sqrt(1 - x * x))) / i0b;
  };
  // Tap i sits at tau = frac + K - 1 - i with frac in [0, 1); K = ceil(W) is the least K whose
  // span covers every tau in (-W, W), so no tap is always zero.
  const K = Math.ceil(W);
  const T = 2 * K;
  const plan: Plan = {
    L,
    M,
    q: Math.floor(M / L),
    r: M % L,
    K,
    T,
    bank: null,
    table: null,
    tableScale: TABLE_RES / S,
    scratch: new Float32Array(T),
    tmp: new Float64Array(T),
  };
  const tmp = plan.tmp;
  if (L * T <= BANK_LIMIT) {
    const bank = new Float32Array(L * T);
    for (let p = 0; p < L; p++) {
      for (let i = 0; i < T; i++) tmp[i] = kernel(p / L + K - 1 - i);
      normalizeInto(tmp, bank, p * T);
    }
    plan.bank = bank;
  } else {
    const size = Math.ceil(zc) * TABLE_RES + 2;
    const table = new Float64Array(size);
    for (let i = 0; i < size; i++) table[i] = kernel(i / plan.tableScale);
    plan.table = table;
  }
  return plan;
}

/** Per-phase normalization makes DC pass at exactly gain 1 regardless of phase or truncation. */
function normalizeInto(src: Float64Array, dst: Float32Array, off: number): void {
  let sum = 0;
  for (let i = 0; i < src.length; i++) sum += src[i];
  for (let i = 0; i < src.length; i++) dst[off + i] = src[i] / sum;
}

function fillScratch(plan: Plan, p: number): void {
  const { T, K, L, table, tableScale, scratch, tmp } = plan;
  const tab = table as Float64Array;
  const last = tab.length - 1;
  const frac = p / L;
  for (let i = 0; i < T; i++) {
    const u = Math.abs(frac + K - 1 - i) * tableScale;
    const j = Math.floor(u);
    tmp[i] = j >= last ? 0 : tab[j] + (u - j) * (tab[j + 1] - tab[j]);
  }
  normalizeInto(tmp, scratch, 0);
}

interface Cursor {
  n: number;
  p: number;
}

/**
 * Renders `count` outputs starting at the cursor. Input index j (absolute) is buf[j - bufStart]
 * when bufStart <= j < availEnd and zero otherwise; the whole-signal and streaming paths both
 * go through here so their sums are formed in the same order and agree bit for bit.
 */
function render(
  plan: Plan,
  cur: Cursor,
  buf: Float32Array,
  bufStart: number,
  availEnd: number,
  out: Float32Array,
  outOff: number,
  count: number,
): void {
  const { T, K, L, q, r, bank } = plan;
  let { n, p } = cur;
  for (let c = 0; c < count; c++) {
    const j0 = n - K + 1;
    let taps: Float32Array;
    let o: number;
    if (bank !== null) {
      taps = bank;
      o = p * T;
    } else {
      fillScratch(plan, p);
      taps = plan.scratch;
      o = 0;
    }
    const lo = j0 < bufStart ? bufStart - j0 : 0;
    const hi = Math.min(T, availEnd - j0);
    const b = j0 - bufStart;
    let acc = 0;
    for (let i = lo; i < hi; i++) acc += taps[o + i] * buf[b + i];
    out[outOff + c] = acc;
    p += r;
    n += q;
    if (p >= L) {
      p -= L;
      n++;
    }
  }
  cur.n = n;
  cur.p = p;
}

/** ceil(len * L / M), exact in integers (len * L stays below 2^53 for any realistic input). */
function outputLength(len: number, L: number, M: number): number {
  if (len <= 0) return 0;
  const a = len * L;
  let k = Math.floor(a / M);
  while (k * M > a) k--;
  while (k * M < a) k++;
  return k;
}

/** Resample a whole mono signal; output length is ceil(input.length * toRate / fromRate) in reduced terms. */
export function resample(
  input: Float32Array,
  fromRate: number,
  toRate: number,
  opts: ResamplerOptions = {},
): Float32Array {
  checkRate('fromRate', fromRate);
  checkRate('toRate', toRate);
  if (fromRate === toRate) return input.slice();
  const plan = makePlan(fromRate, toRate, opts);
  const out = new Float32Array(outputLength(input.length, plan.L, plan.M));
  render(plan, { n: 0, p: 0 }, input, 0, input.length, out, 0, out.length);
  return out;
}

/**
 * Streaming form. An output is emitted as soon as every input its filter reads has arrived,
 * so push() lags the input by about K input samples; flush() emits the rest with zero padding
 * and resets the resampler for a new stream.
 */
export class StreamResampler {
  private readonly plan: Plan | null;
  private cur: Cursor = { n: 0, p: 0 };
  private buf = new Float32Array(0);
  private bufStart = 0;
  private bufLen = 0;
  private emitted = 0;

  constructor(fromRate: number, toRate: number, opts: ResamplerOptions = {}) {
    checkRate('fromRate', fromRate);
    checkRate('toRate', toRate);
    this.plan = fromRate === toRate ? null : makePlan(fromRate, toRate, opts);
  }

  push(chunk: Float32Array): Float32Array {
    const plan = this.plan;
    if (plan === null) return chunk.slice();
    // Drop input no future output can read, then append; amortized growth keeps push O(chunk).
    const keepFrom = Math.max(0, this.cur.n - plan.K + 1);
    const drop = Math.min(this.bufLen, keepFrom - this.bufStart);
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufStart += drop;
      this.bufLen -= drop;
    }
    if (this.bufLen + chunk.length > this.buf.length) {
      const grown = new Float32Array(Math.max(2 * this.buf.length, this.bufLen + chunk.length, 4 * plan.T));
      grown.set(this.buf.subarray(0, this.bufLen));
      this.buf = grown;
    }
    this.buf.set(chunk, this.bufLen);
    this.bufLen += chunk.length;
    const total = this.bufStart + this.bufLen;
    return this.emit(outputLength(total - plan.K, plan.L, plan.M), total);
  }

  flush(): Float32Array {
    const plan = this.plan;
    if (plan === null) return new Float32Array(0);
    const total = this.bufStart + this.bufLen;
    const out = this.emit(outputLength(total, plan.L, plan.M), total);
    this.cur = { n: 0, p: 0 };
    this.bufStart = 0;
    this.bufLen = 0;
    this.emitted = 0;
    return out;
  }

  private emit(end: number, total: number): Float32Array {
    const count = Math.max(0, end - this.emitted);
    const out = new Float32Array(count);
    render(this.plan as Plan, this.cur, this.buf, this.bufStart, total, out, 0, count);
    this.emitted += count;
    return out;
  }
}
