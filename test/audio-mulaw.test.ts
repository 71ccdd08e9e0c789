import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCode, encodeSample, MU, muLawDecode, muLawEncode, NUM_CODES, SILENCE_CODE } from '../src/audio/mulaw.js';

// The formula of docs/audio.md, written out independently of the module.
function formulaCode(x: number): number {
  const f = (Math.sign(x) * Math.log(1 + 255 * Math.abs(x))) / Math.log(256);
  return Math.floor(((f + 1) / 2) * 255 + 0.5);
}
function formulaDecode(q: number): number {
  const y = (2 * q) / 255 - 1;
  return (Math.sign(y) * (Math.pow(256, Math.abs(y)) - 1)) / 255;
}

test('mu is 255 and silence is the middle code', () => {
  assert.equal(MU, 255);
  assert.equal(SILENCE_CODE, 128);
  assert.equal(SILENCE_CODE, encodeSample(0), 'silence is the code of a zero sample');
  assert.equal(NUM_CODES, MU + 1);
  assert.equal(formulaCode(0), 128);
});

test('array encoder agrees with the formula on a dense sweep and on every code boundary', () => {
  const xs: number[] = [];
  for (let i = -100000; i <= 100000; i++) xs.push(i / 100000);
  // Values straddling each decision threshold, where a fast path would most likely disagree.
  for (let q = 1; q <= 255; q++) {
    const f = (2 * (q - 0.5)) / 255 - 1;
    const t = (Math.sign(f) * (Math.pow(256, Math.abs(f)) - 1)) / 255;
    for (const d of [-1e-6, -1e-9, 0, 1e-9, 1e-6]) xs.push(t + d);
  }
  const input = Float32Array.from(xs);
  const codes = muLawEncode(input);
  for (let i = 0; i < input.length; i++) {
    assert.equal(codes[i], formulaCode(input[i]), `x=${input[i]}`);
    assert.equal(codes[i], encodeSample(input[i]));
  }
});

test('every code occurs, decode matches the formula, and code round trips are exact', () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const decoded = muLawDecode(all);
  for (let q = 0; q < 256; q++) {
    assert.ok(Math.abs(decoded[q] - formulaDecode(q)) < 1e-7, `decode ${q}`);
    assert.ok(Math.abs(decodeCode(q) - formulaDecode(q)) < 1e-12);
  }
  assert.deepEqual(Array.from(muLawEncode(decoded)), Array.from(all));
  assert.equal(decoded[0], -1);
  assert.equal(decoded[255], 1);
});

test('a sample round trip stays within one quantization step', () => {
  const x = new Float32Array(20001).map((_, i) => -1 + i / 10000);
  const y = muLawDecode(muLawEncode(x));
  for (let i = 0; i < x.length; i++) {
    const q = formulaCode(x[i]);
    const step = Math.max(
      formulaDecode(Math.min(255, q + 1)) - formulaDecode(q),
      formulaDecode(q) - formulaDecode(Math.max(0, q - 1)),
    );
    assert.ok(Math.abs(y[i] - x[i]) <= step + 1e-7, `x=${x[i]} y=${y[i]}`);
  }
});

test('out-of-range input clamps, NaN becomes silence, bad codes are refused', () => {
  assert.deepEqual(
    Array.from(muLawEncode(Float32Array.from([-3, 3, NaN, -Infinity, Infinity]))),
    [0, 255, 128, 0, 255],
  );
  assert.throws(() => muLawDecode([256]), /code 256 at index 0/);
  assert.throws(() => muLawDecode([1.5]), /outside 0..255/);
  assert.throws(() => muLawEncode(new Float32Array(4), new Uint8Array(2)), /holds 2 codes/);
});

test('this is not G.711: a G.711 mu-law byte table would disagree', () => {
  // G.711 maps 0 to 0xFF (inverted bits); WaveNet mu-law maps it to the middle code.
  assert.notEqual(encodeSample(0), 0xff);
  // WaveNet codes grow with x; G.711 bytes do not.
  const c = muLawEncode(Float32Array.from([-0.5, -0.1, 0, 0.1, 0.5]));
  for (let i = 1; i < c.length; i++) assert.ok(c[i] > c[i - 1]);
});
