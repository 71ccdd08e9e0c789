import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { AudioDecodeError } from '../src/audio/errors.js';
import { decodeWithFfmpeg } from '../src/audio/ffmpeg.js';
import { writeWav } from '../src/audio/wav.js';
import { ffmpegFixture, maxErrMiddle, sine, tempDir } from './helpers.js';

const dir = tempDir();
const SRC16 = 'aevalsrc=0.5*sin(2*PI*440*t):s=16000:d=1';
const expected = sine(16000, 16000, 440, 0.5);

const DEPTHS: [string, number][] = [
  ['pcm_u8', 1 / 128],
  ['pcm_s16le', 1 / 32768],
  ['pcm_s24le', 1e-6],
  ['pcm_s32le', 1e-6],
  ['pcm_f32le', 1e-6],
  ['pcm_f64le', 1e-6],
];

for (const [codec, tol] of DEPTHS) {
  test(`WAV ${codec} decodes natively to the analytic signal`, async () => {
    const f = ffmpegFixture(path.join(dir, `${codec}.wav`), SRC16, ['-c:a', codec]);
    const a = await decodeAudio(f, 16000);
    assert.equal(a.decoder, 'wav');
    assert.equal(a.sourceRate, 16000);
    assert.equal(a.samples.length, 16000);
    assert.ok(maxErrMiddle(a.samples, expected, 0) <= tol, `max error ${maxErrMiddle(a.samples, expected, 0)}`);
  });
}

test('stereo is the average of its channels', async () => {
  const f = ffmpegFixture(
    path.join(dir, 'stereo.wav'),
    'aevalsrc=0.5*sin(2*PI*440*t)|0.25*sin(2*PI*1000*t):s=16000:d=1',
    ['-c:a', 'pcm_f32le'],
  );
  const a = await decodeAudio(f, 16000);
  assert.equal(a.channels, 2);
  const l = sine(16000, 16000, 440, 0.5);
  const r = sine(16000, 16000, 1000, 0.25);
  const avg = l.map((v, i) => (v + r[i]) / 2);
  assert.ok(maxErrMiddle(a.samples, avg, 0) < 1e-6);
  // The ffmpeg path downmixes the same way (ffmpeg's own -ac 1 would scale by 1/sqrt(2) instead).
  const b = await decodeWithFfmpeg(f, 16000);
  assert.equal(b.channels, 2);
  assert.ok(maxErrMiddle(b.samples, avg, 0) < 1e-6);
});

test('six channels in a WAVE_FORMAT_EXTENSIBLE header are averaged', async () => {
  const exprs = [0.6, 0.5, 0.4, 0.3, 0.2, 0.1].map((a, k) => `${a}*sin(2*PI*${200 * (k + 1)}*t)`).join('|');
  const f = ffmpegFixture(path.join(dir, 'six.wav'), `aevalsrc=${exprs}:s=16000:d=1`, ['-c:a', 'pcm_s24le']);
  const head = fs.readFileSync(f).subarray(0, 64);
  assert.equal(head.readUInt16LE(20), 0xfffe, 'fixture must use the extensible format tag');
  const a = await decodeAudio(f, 16000);
  assert.equal(a.channels, 6);
  const want = new Float64Array(16000);
  [0.6, 0.5, 0.4, 0.3, 0.2, 0.1].forEach((amp, k) =>
    sine(16000, 16000, 200 * (k + 1), amp).forEach((v, i) => (want[i] += v / 6)),
  );
  assert.ok(maxErrMiddle(a.samples, want, 0) < 1e-5);
});

test('44.1 kHz WAV is resampled to 16 kHz by the band-limited resampler, and agrees with ffmpeg/soxr', async () => {
  const f = ffmpegFixture(path.join(dir, 'hi.wav'), 'aevalsrc=0.5*sin(2*PI*440*t):s=44100:d=1', ['-c:a', 'pcm_f32le']);
  const a = await decodeAudio(f, 16000);
  assert.equal(a.sourceRate, 44100);
  assert.ok(Math.abs(a.samples.length - 16000) <= 1);
  assert.ok(maxErrMiddle(a.samples, expected) < 2e-3, `vs analytic ${maxErrMiddle(a.samples, expected)}`);
  const b = await decodeWithFfmpeg(f, 16000);
  assert.ok(maxErrMiddle(a.samples, b.samples) < 2e-3, `vs soxr ${maxErrMiddle(a.samples, b.samples)}`);
});

test('FLAC at 22.05 kHz and Ogg/Opus decode through ffmpeg', async () => {
  const flac = ffmpegFixture(path.join(dir, 'x.flac'), 'aevalsrc=0.5*sin(2*PI*440*t):s=22050:d=1', ['-c:a', 'flac']);
  const a = await decodeAudio(flac, 16000);
  assert.equal(a.decoder, 'ffmpeg');
  assert.equal(a.sourceRate, 22050);
  assert.ok(maxErrMiddle(a.samples, expected) < 2e-3);
  const opus = ffmpegFixture(path.join(dir, 'x.opus'), 'aevalsrc=0.5*sin(2*PI*440*t):s=48000:d=1', [
    '-c:a',
    'libopus',
    '-b:a',
    '96k',
  ]);
  const b = await decodeAudio(opus, 16000);
  assert.equal(b.decoder, 'ffmpeg');
  // Lossy codec: check the level and the pitch rather than every sample.
  const rms = Math.sqrt(b.samples.reduce((s, v) => s + v * v, 0) / b.samples.length);
  assert.ok(Math.abs(rms - 0.5 / Math.SQRT2) < 0.03, `rms ${rms}`);
});

test('a WAV encoding we do not convert natively (IMA ADPCM) falls back to ffmpeg', async () => {
  const f = ffmpegFixture(path.join(dir, 'adpcm.wav'), SRC16, ['-c:a', 'adpcm_ima_wav']);
  const a = await decodeAudio(f, 16000);
  assert.equal(a.decoder, 'ffmpeg');
  assert.ok(maxErrMiddle(a.samples, expected) < 0.02);
});

test('writeWav output reads back within 16-bit quantization', async () => {
  const x = Float32Array.from(sine(8000, 16000, 300, 0.7));
  const f = path.join(dir, 'written.wav');
  writeWav(f, x, 16000);
  const a = await decodeAudio(f, 16000);
  assert.ok(maxErrMiddle(a.samples, x, 0) <= 1 / 32767);
  const b = await decodeWithFfmpeg(f, 16000);
  assert.ok(maxErrMiddle(b.samples, x, 0) <= 1 / 32767);
});

async function rejects(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(decodeAudio(file, 16000), (e: unknown) => {
    assert.ok(e instanceof AudioDecodeError, `expected AudioDecodeError, got ${String(e)}`);
    assert.equal(e.path, path.resolve(file));
    assert.match(e.message, pattern);
    return true;
  });
}

test('bad inputs fail with the path and a reason, never as silence', async () => {
  const good = fs.readFileSync(ffmpegFixture(path.join(dir, 'good.wav'), SRC16, ['-c:a', 'pcm_s16le']));
  const w = (name: string, bytes: Uint8Array | string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  await rejects(w('empty.wav', ''), /empty file/);
  await rejects(w('text.wav', 'hello, this is not audio at all\n'.repeat(4)), /not a RIFF\/WAVE file/);
  await rejects(
    w('truncated.wav', good.subarray(0, 20000)),
    /truncated WAV: data chunk declares 32000 bytes but only \d+ are present/,
  );
  const dataTag = good.indexOf('data');
  const headerOnly = Buffer.from(good.subarray(0, dataTag + 8));
  headerOnly.writeUInt32LE(0, dataTag + 4);
  await rejects(w('nodata.wav', headerOnly), /no samples/);
  await rejects(w('cut-header.wav', good.subarray(0, 30)), /data|header/);
  await rejects(w('noise.mp3', Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 251))), /ffmpeg|audio/);
  await rejects(w('empty.flac', ''), /invalid data|ffmpeg|audio/i);
  await rejects(path.join(dir, 'missing.wav'), /no such file/);
  fs.mkdirSync(path.join(dir, 'folder.wav'), { recursive: true });
  await rejects(path.join(dir, 'folder.wav'), /directory/);
  const nan = Buffer.from(fs.readFileSync(ffmpegFixture(path.join(dir, 'f32.wav'), SRC16, ['-c:a', 'pcm_f32le'])));
  const dataAt = nan.indexOf('data') + 8;
  nan.writeFloatLE(NaN, dataAt + 400);
  await rejects(w('nan.wav', nan), /non-finite sample/);
});
