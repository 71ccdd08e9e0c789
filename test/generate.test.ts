import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import wavefile from 'wavefile';
import { muLawDecode, SILENCE_CODE } from '../src/audio/mulaw.js';
import { Rng } from '../src/data/rng.js';
import { codesToWav, generateCodes } from '../src/infer/generate.js';
import type { Generator } from '../src/models/family.js';
import { Sampler, type SamplingOptions } from '../src/engine/sampling.js';
import { tempDir } from './helpers.js';

const N = 256;

/** A bigram model: the logits for the next code are a fixed random row chosen by the last code fed. */
class BigramGenerator implements Generator {
  readonly engine = 'bigram table (test)';
  readonly table = new Float32Array(N * N);
  readonly primed: Uint8Array[] = [];
  private last: Int32Array | undefined;
  constructor(
    readonly batch: number,
    tableSeed = 7,
  ) {
    const rng = new Rng(tableSeed);
    // Spread of a few nats: peaked enough that the argmax path is far from random, broad enough
    // that temperature-1 sampling visits many codes.
    for (let i = 0; i < this.table.length; i++) this.table[i] = 4 * rng.nextFloat() - 2;
  }
  private logits(): Float32Array {
    const out = new Float32Array(this.batch * N);
    for (let r = 0; r < this.batch; r++) out.set(this.table.subarray(this.last![r] * N, this.last![r] * N + N), r * N);
    return out;
  }
  async prime(codes: Uint8Array): Promise<Float32Array> {
    assert.ok(codes.length > 0, 'prime needs at least one code');
    this.primed.push(codes.slice());
    this.last = new Int32Array(this.batch).fill(codes[codes.length - 1]);
    return this.logits();
  }
  async step(codes: Int32Array): Promise<Float32Array> {
    assert.ok(this.last, 'step before prime');
    assert.equal(codes.length, this.batch);
    for (let r = 0; r < this.batch; r++) {
      assert.ok(Number.isInteger(codes[r]) && codes[r] >= 0 && codes[r] < N, `code ${codes[r]}`);
      this.last[r] = codes[r];
    }
    return this.logits();
  }
  async dispose(): Promise<void> {}
}

const base = { seconds: 0.05, sampleRate: 4000, seed: 1, sampling: { temperature: 1 } };

test('same seed gives identical codes, a different seed different ones; rows differ', async () => {
  const a = await generateCodes(new BigramGenerator(3), base);
  const b = await generateCodes(new BigramGenerator(3), base);
  const c = await generateCodes(new BigramGenerator(3), { ...base, seed: 2 });
  assert.equal(a.continuationSamples, 200);
  assert.equal(a.codes.length, 3);
  assert.deepEqual(a.codes, b.codes);
  assert.notDeepEqual(a.codes, c.codes);
  assert.notDeepEqual(a.codes[0], a.codes[1]);
  assert.ok(a.realTimeFactor > 0 && Number.isFinite(a.realTimeFactor));
  assert.ok(Math.abs(a.realTimeFactor - base.sampleRate / a.samplesPerSecond) < 1e-9 * a.realTimeFactor);
});

/** The argmax path, walked through the table directly (ties cannot occur among random float32s here). */
function argmaxPath(gen: BigramGenerator, first: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let last = first;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < N; c++) if (gen.table[last * N + c] > gen.table[last * N + best]) best = c;
    out[i] = last = best;
  }
  return out;
}

test('temperature 0 follows the argmax path; top-k 1 at any temperature is the same path', async () => {
  const gen = new BigramGenerator(2);
  const greedy = await generateCodes(gen, { ...base, sampling: { temperature: 0 } });
  const expected = argmaxPath(gen, SILENCE_CODE, 200);
  for (const row of greedy.codes) assert.deepEqual(row, expected);
  const k1 = await generateCodes(new BigramGenerator(2), {
    ...base,
    seed: 99,
    sampling: { temperature: 1.7, topK: 1 },
  });
  assert.deepEqual(k1.codes, greedy.codes);
  const tiny = await generateCodes(new BigramGenerator(2), { ...base, sampling: { temperature: 1e-9 } });
  assert.deepEqual(tiny.codes, greedy.codes);
});

test('greedy ties go to the lowest code', () => {
  const logits = new Float32Array(N).fill(-1);
  logits[200] = 3;
  logits[17] = 3;
  logits[90] = 3;
  assert.equal(new Sampler({ temperature: 0 }).sampleRow(logits, 0, new Rng(0)), 17);
});

test('top-k ties at the boundary keep the lowest codes', () => {
  // Codes 17, 90, 200 tie for first and 5, 60, 250 for second: top-4 keeps 17, 90, 200 and 5.
  const logits = new Float32Array(N).fill(-5);
  for (const c of [17, 90, 200]) logits[c] = 3;
  for (const c of [5, 60, 250]) logits[c] = 2;
  const s = new Sampler({ temperature: 1, topK: 4 });
  const rng = new Rng(4);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(s.sampleRow(logits, 0, rng));
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [5, 17, 90, 200],
  );
});

test('the prompt is the prefix of every row; with no prompt the silence primer is not output', async () => {
  const prompt = Uint8Array.from([5, 250, 128, 3, 77]);
  const gen = new BigramGenerator(4);
  const r = await generateCodes(gen, { ...base, prompt });
  assert.equal(r.promptLength, 5);
  assert.deepEqual(gen.primed, [prompt]);
  for (const row of r.codes) {
    assert.equal(row.length, 5 + 200);
    assert.deepEqual(row.subarray(0, 5), prompt);
  }
  // Greedy after a prompt continues from the prompt's last code.
  const g = await generateCodes(gen, { ...base, prompt, sampling: { temperature: 0 } });
  assert.deepEqual(g.codes[0].subarray(5), argmaxPath(gen, 77, 200));

  const gen2 = new BigramGenerator(1);
  const none = await generateCodes(gen2, base);
  assert.deepEqual(gen2.primed, [Uint8Array.of(SILENCE_CODE)]);
  assert.equal(none.promptLength, 0);
  assert.equal(none.codes[0].length, 200);
});

test('progress reports finish at total', async () => {
  const calls: number[][] = [];
  await generateCodes(new BigramGenerator(1), { ...base, onProgress: (d, t, s) => calls.push([d, t, s]) });
  const last = calls[calls.length - 1];
  assert.equal(last[0], 200);
  assert.equal(last[1], 200);
  assert.ok(last[2] > 0);
});

// ---- distribution of the sampler ----

/** A fixed logit row: a spread of values, a few masked codes, and a tie at the top-k boundary region. */
function fixedLogits(): Float32Array {
  const rng = new Rng(12345);
  const l = new Float32Array(N);
  for (let c = 0; c < N; c++) l[c] = 3 * rng.nextFloat();
  l[10] = -Infinity;
  l[11] = -Infinity;
  return l;
}

/** softmax(l / T) restricted as top-k then top-p prescribe, written from the definitions. */
function expectedDist(l: Float32Array, o: SamplingOptions): number[] {
  const e = Array.from(l, (v) => Math.exp(v / o.temperature));
  const ranked = [...e.keys()].sort((a, b) => e[b] - e[a] || a - b);
  let keep = ranked.slice(0, o.topK ?? N);
  if (o.topP !== undefined) {
    const mass = keep.reduce((s, c) => s + e[c], 0);
    let cum = 0;
    const nucleus: number[] = [];
    for (const c of keep) {
      nucleus.push(c);
      cum += e[c] / mass;
      if (cum >= o.topP) break;
    }
    keep = nucleus;
  }
  const p = new Array<number>(N).fill(0);
  const z = keep.reduce((s, c) => s + e[c], 0);
  for (const c of keep) p[c] = e[c] / z;
  return p;
}

/**
 * Pearson chi-square of draws sampled with `o` against the distribution `expect` prescribes, bins
 * with expected count < 5 pooled; excluded codes must never be drawn. The bound is the chi-square
 * quantile at 1 - 1e-6 (Wilson-Hilferty), so a correct sampler fails for about one seed in a
 * million; the last test checks that a wrong distribution overshoots it at these draw counts.
 */
function chiSquare(o: SamplingOptions, draws: number, expect: SamplingOptions = o): { chi: number; bound: number } {
  const l = fixedLogits();
  const p = expectedDist(l, expect);
  const batch = 8;
  const logits = new Float32Array(batch * N);
  for (let r = 0; r < batch; r++) logits.set(l, r * N);
  const counts = new Array<number>(N).fill(0);
  const s = new Sampler(o);
  const rng = new Rng(2024);
  const out = new Int32Array(batch);
  for (let i = 0; i < draws / batch; i++) {
    s.sampleRows(logits, batch, rng, out);
    for (const c of out) counts[c]++;
  }
  for (let c = 0; c < N; c++)
    if (p[c] === 0) assert.equal(counts[c], 0, `excluded code ${c} was drawn (${JSON.stringify(o)})`);
  let chi = 0;
  let bins = 0;
  let poolE = 0;
  let poolO = 0;
  for (let c = 0; c < N; c++) {
    if (p[c] === 0) continue;
    const e = p[c] * draws;
    if (e < 5) {
      poolE += e;
      poolO += counts[c];
      continue;
    }
    chi += (counts[c] - e) ** 2 / e;
    bins++;
  }
  if (poolE > 0) {
    chi += (poolO - poolE) ** 2 / poolE;
    bins++;
  }
  const k = bins - 1;
  const z = 4.753; // one-sided normal quantile at 1 - 1e-6
  return { chi, bound: k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3 };
}

function chiSquareOk(o: SamplingOptions, draws: number): void {
  const { chi, bound } = chiSquare(o, draws);
  assert.ok(chi < bound, `chi-square ${chi.toFixed(1)} exceeds ${bound.toFixed(1)} for ${JSON.stringify(o)}`);
}

test('sampled frequencies match softmax(logits / T)', () => {
  chiSquareOk({ temperature: 1 }, 100_000);
  chiSquareOk({ temperature: 0.5 }, 100_000);
  chiSquareOk({ temperature: 2 }, 100_000);
});

test('top-k and top-p emit only kept codes, renormalised', () => {
  chiSquareOk({ temperature: 1, topK: 5 }, 40_000);
  chiSquareOk({ temperature: 0.7, topK: 40 }, 50_000);
  chiSquareOk({ temperature: 1, topP: 0.3 }, 50_000);
  chiSquareOk({ temperature: 1.3, topK: 30, topP: 0.5 }, 50_000);
  chiSquareOk({ temperature: 1, topK: 200 }, 50_000);
});

test('the frequency check has the power to catch a wrong distribution', () => {
  // Guards the tests above: a 10% temperature error, or a set larger than prescribed, must fail.
  const t = chiSquare({ temperature: 1 }, 100_000, { temperature: 1.1 });
  assert.ok(t.chi > t.bound, `temperature: chi-square ${t.chi.toFixed(1)}, bound ${t.bound.toFixed(1)}`);
  assert.throws(
    () => chiSquare({ temperature: 0.7, topK: 50 }, 50_000, { temperature: 0.7, topK: 40 }),
    /excluded code/,
  );
  assert.throws(
    () => chiSquare({ temperature: 1, topP: 0.35 }, 50_000, { temperature: 1, topP: 0.3 }),
    /excluded code/,
  );
  // Within a truncated set, the weights must follow the temperature too.
  const k = chiSquare({ temperature: 1, topK: 200 }, 50_000, { temperature: 1.2, topK: 200 });
  assert.ok(k.chi > k.bound, `top-k: chi-square ${k.chi.toFixed(1)}, bound ${k.bound.toFixed(1)}`);
});

test('bad options throw naming the flag', async () => {
  const bad: [SamplingOptions, RegExp][] = [
    [{ temperature: -0.1 }, /--temperature must be >= 0/],
    [{ temperature: NaN }, /--temperature/],
    [{ temperature: Infinity }, /--temperature/],
    [{ temperature: 1, topK: 0 }, /--top-k must be an integer in 1\.\.256/],
    [{ temperature: 1, topK: 257 }, /--top-k/],
    [{ temperature: 1, topK: 2.5 }, /--top-k/],
    [{ temperature: 1, topP: 0 }, /--top-p must be in \(0, 1\]/],
    [{ temperature: 1, topP: 1.01 }, /--top-p/],
    [{ temperature: 1, topP: NaN }, /--top-p/],
  ];
  for (const [o, re] of bad) {
    assert.throws(
      () => new Sampler(o),
      (e: unknown) => e instanceof RangeError && re.test(e.message),
      JSON.stringify(o),
    );
    await assert.rejects(generateCodes(new BigramGenerator(1), { ...base, sampling: o }), re);
  }
  for (const seconds of [0, -1, Infinity, NaN]) {
    await assert.rejects(
      generateCodes(new BigramGenerator(1), { ...base, seconds }),
      (e: unknown) => e instanceof RangeError && /--seconds/.test(e.message),
    );
  }
  await assert.rejects(generateCodes(new BigramGenerator(1), { ...base, seconds: 1e-5 }), /--seconds/);
});

test('codesToWav round-trips through a 16-bit WAV', () => {
  const dir = tempDir();
  try {
    const codes = new Uint8Array(600);
    for (let i = 0; i < codes.length; i++) codes[i] = (i * 37) % 256; // every code, in a scrambled order
    const file = path.join(dir, 'out.wav');
    codesToWav(file, codes, 16000);
    const wav = new wavefile.WaveFile(fs.readFileSync(file));
    const fmt = wav.fmt as { sampleRate: number; numChannels: number; bitsPerSample: number };
    assert.deepEqual([fmt.sampleRate, fmt.numChannels, fmt.bitsPerSample], [16000, 1, 16]);
    const pcm = wav.getSamples(false, Int16Array) as unknown as Int16Array;
    assert.equal(pcm.length, codes.length);
    const ref = muLawDecode(codes);
    // Half a 16-bit step is the quantisation error; a hair more for float32 rounding of the reference.
    for (let i = 0; i < codes.length; i++)
      assert.ok(Math.abs(pcm[i] / 32767 - ref[i]) <= 0.5 / 32767 + 1e-7, `sample ${i}`);
    assert.deepEqual(fs.readdirSync(dir), ['out.wav']); // no temp file left behind
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
