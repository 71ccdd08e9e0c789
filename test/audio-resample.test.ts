import { test } from 'node:test';
import assert from 'node:assert/strict';
import { besselI0, resample, StreamResampler } from '../src/audio/resample.js';

function sine(n: number, rate: number, freq: number, amp = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Index range covering the middle 80% of a signal, clear of zero-padding edge effects. */
function middle(len: number): [number, number] {
  return [Math.floor(len * 0.1), Math.ceil(len * 0.9)];
}

function maxErrVsSine(y: Float32Array, rate: number, freq: number): number {
  const [a, b] = middle(y.length);
  let m = 0;
  for (let k = a; k < b; k++) m = Math.max(m, Math.abs(y[k] - Math.sin((2 * Math.PI * freq * k) / rate)));
  return m;
}

function middleRms(y: ArrayLike<number>): number {
  const [a, b] = middle(y.length);
  let s = 0;
  for (let k = a; k < b; k++) s += y[k] * y[k];
  return Math.sqrt(s / (b - a));
}

/** Deterministic PRNG so a failing chunking is reproducible. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('output length is ceil(n * to / from) for several rate pairs', () => {
  const cases: Array<[number, number, number, number]> = [
    // [from, to, input length, expected output length] — expectations worked out by hand.
    [8000, 16000, 1000, 2000],
    [8000, 16000, 1, 2],
    [44100, 16000, 44100, 16000],
    [44100, 16000, 1000, 363], // 362.81...
    [44100, 16000, 441, 160],
    [48000, 16000, 1000, 334], // 333.33...
    [48000, 16000, 3, 1],
    [22050, 16000, 1000, 726], // 725.62...
    [22050, 16000, 22050, 16000],
    [16000, 16000, 1234, 1234],
    [44100, 16000, 0, 0],
  ];
  for (const [from, to, n, expected] of cases) {
    assert.equal(resample(new Float32Array(n), from, to).length, expected, `${from}->${to} n=${n}`);
    assert.equal(expected, Math.ceil((n * to) / from));
  }
});

test('besselI0 matches tabulated values', () => {
  // Reference values from numpy.i0, which uses Chebyshev expansions rather than the power series.
  const ref: Array<[number, number]> = [
    [0, 1],
    [1, 1.2660658777520082],
    [8.6, 750.4611595631659],
    [20, 43558282.559553534],
  ];
  for (const [x, v] of ref) assert.ok(Math.abs(besselI0(x) / v - 1) < 1e-13, `I0(${x}) = ${besselI0(x)}, want ${v}`);
});

test('440 Hz sine 44100 -> 16000 matches the analytic 16 kHz sine', () => {
  const y = resample(sine(44100, 44100, 440), 44100, 16000);
  const err = maxErrVsSine(y, 16000, 440);
  assert.ok(err < 1e-3, `max err ${err}`);
});

test('1 kHz sine 8000 -> 16000 matches the analytic 16 kHz sine', () => {
  const y = resample(sine(8000, 8000, 1000), 8000, 16000);
  assert.equal(y.length, 16000);
  const err = maxErrVsSine(y, 16000, 1000);
  assert.ok(err < 1e-3, `max err ${err}`);
});

test('other ratios, including the on-the-fly tap path (44101 -> 16000), match analytic sines', () => {
  for (const [from, to, f] of [
    [48000, 16000, 1234],
    [22050, 16000, 3000],
    [16000, 44100, 2500],
    [44101, 16000, 440],
    [44101, 16000, 5000],
  ]) {
    const y = resample(sine(from, from, f), from, to);
    const err = maxErrVsSine(y, to, f);
    assert.ok(err < 1e-3, `${from}->${to} ${f} Hz: max err ${err}`);
  }
});

test('a 9 kHz sine at 44.1 kHz is removed when going to 16 kHz, unlike naive decimation', () => {
  const from = 44100;
  const to = 16000;
  const x = sine(from, from, 9000);
  const y = resample(x, from, to);
  // Naive nearest-sample decimation folds 9 kHz to 7 kHz at essentially full amplitude.
  const naive = new Float32Array(y.length);
  for (let k = 0; k < naive.length; k++) naive[k] = x[Math.min(x.length - 1, Math.round((k * from) / to))];
  const naiveRms = middleRms(naive);
  const rms = middleRms(y);
  assert.ok(naiveRms > 0.6, `naive decimation rms ${naiveRms} should show the alias`);
  assert.ok(rms < 0.01, `resampled rms ${rms} should be > 40 dB down`);
});

test('DC stays at 0.5 in the middle', () => {
  for (const [from, to] of [
    [44100, 16000],
    [8000, 16000],
    [44101, 16000],
    [16000, 48000],
  ]) {
    const y = resample(new Float32Array(from).fill(0.5), from, to);
    const [a, b] = middle(y.length);
    for (let k = a; k < b; k++) assert.ok(Math.abs(y[k] - 0.5) < 1e-4, `${from}->${to} y[${k}]=${y[k]}`);
  }
});

test('output is aligned with no delay: output k sits at input time k * from / to', () => {
  // A slow ramp is band-limited enough to be reproduced exactly where it is linear.
  const from = 48000;
  const to = 16000;
  const x = new Float32Array(4800);
  for (let i = 0; i < x.length; i++) x[i] = i / x.length;
  const y = resample(x, from, to);
  const [a, b] = middle(y.length);
  for (let k = a; k < b; k++) assert.ok(Math.abs(y[k] - (k * 3) / x.length) < 1e-5, `y[${k}]=${y[k]}`);
});

test('samples outside the signal are treated as zeros, up to the very first and last output', () => {
  // Padding with a whole period of M input zeros (M = 441 here, longer than the filter's reach)
  // shifts outputs by exactly L = 160 and must not change a single edge value.
  const rand = mulberry32(7);
  const x = new Float32Array(3000);
  for (let i = 0; i < x.length; i++) x[i] = rand() * 2 - 1;
  const padded = new Float32Array(x.length + 2 * 441);
  padded.set(x, 441);
  const y = resample(x, 44100, 16000);
  const yp = resample(padded, 44100, 16000);
  for (let k = 0; k < y.length; k++) {
    if (!(Math.abs(y[k] - yp[k + 160]) <= 1e-6)) assert.fail(`k=${k}: ${y[k]} vs padded ${yp[k + 160]}`);
  }
  // Outputs whose filter reaches only the padding (k < 160 - 16) must be exactly silent.
  assert.ok(yp.slice(0, 140).every((v) => v === 0));
});

test('streaming with random chunk sizes equals the whole-signal resample', () => {
  const rand = mulberry32(12345);
  const pairs = [
    [44100, 16000],
    [8000, 16000],
    [48000, 16000],
    [22050, 16000],
    [44101, 16000],
    [16000, 44100],
    [16000, 16000],
  ];
  for (const [from, to] of pairs) {
    const x = new Float32Array(Math.floor(from * 0.3) + 17);
    for (let i = 0; i < x.length; i++) x[i] = rand() * 2 - 1;
    const whole = resample(x, from, to);
    for (let trial = 0; trial < 3; trial++) {
      const s = new StreamResampler(from, to);
      const parts: Float32Array[] = [];
      let pos = 0;
      while (pos < x.length) {
        // Mix empty, single-sample and large chunks: each stresses a different buffer case.
        const r = rand();
        const len = r < 0.1 ? 0 : r < 0.2 ? 1 : Math.floor(rand() * (trial === 0 ? 50 : 3000));
        parts.push(s.push(x.subarray(pos, pos + len)));
        pos += len;
      }
      parts.push(s.flush());
      const got = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        got.set(p, o);
        o += p.length;
      }
      assert.equal(got.length, whole.length, `${from}->${to} length`);
      for (let k = 0; k < whole.length; k++) {
        // Written as !(<=) so a NaN on either side fails too.
        if (!(Math.abs(got[k] - whole[k]) <= 1e-6))
          assert.fail(`${from}->${to} trial ${trial}: k=${k} ${got[k]} vs ${whole[k]}`);
      }
    }
  }
});

test('a flushed stream can be reused for a new signal', () => {
  const x = sine(2000, 44100, 440);
  const s = new StreamResampler(44100, 16000);
  s.push(sine(999, 44100, 3000));
  s.flush();
  const a = s.push(x);
  const b = s.flush();
  const got = new Float32Array(a.length + b.length);
  got.set(a);
  got.set(b, a.length);
  assert.deepEqual(got, resample(x, 44100, 16000));
});

test('equal rates return an equal copy', () => {
  const x = sine(1000, 16000, 440);
  const y = resample(x, 16000, 16000);
  assert.notEqual(y, x);
  assert.deepEqual(y, x);
  y[0] = 42;
  assert.equal(x[0], 0);
  const s = new StreamResampler(16000, 16000);
  const c = s.push(x);
  assert.notEqual(c, x);
  assert.deepEqual(c, x);
  assert.equal(s.flush().length, 0);
});

test('invalid rates throw an Error naming the bad rate', () => {
  const x = new Float32Array(10);
  for (const bad of [0, -16000, 1.5, NaN, Infinity]) {
    const re = new RegExp(`fromRate.*${String(bad).replace('.', '\\.')}`);
    assert.throws(
      () => resample(x, bad, 16000),
      (e: unknown) => e instanceof Error && re.test(e.message),
    );
    const re2 = new RegExp(`toRate.*${String(bad).replace('.', '\\.')}`);
    assert.throws(
      () => resample(x, 16000, bad),
      (e: unknown) => e instanceof Error && re2.test(e.message),
    );
    assert.throws(
      () => new StreamResampler(bad, 16000),
      (e: unknown) => e instanceof Error && re.test(e.message),
    );
  }
});
