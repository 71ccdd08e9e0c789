import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawEncode } from '../src/audio/mulaw.js';
import { writeWav } from '../src/audio/wav.js';
import { CodeSink, decodeJob } from '../src/data/decode-worker.js';
import { readManifest } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { silenceBounds, StreamTrimmer } from '../src/data/trim.js';
import { ffmpegFixture, tempDir } from './helpers.js';

const TONE = (d: number) => `aevalsrc=0.4*sin(2*PI*300*t)*sin(2*PI*2*t):s=16000:d=${d}`;

test('a FLAC saved as .wav is decoded by its content, not refused as "not a RIFF/WAVE file"', async () => {
  const dir = path.join(tempDir(), 'audio');
  fs.mkdirSync(dir);
  const flac = ffmpegFixture(path.join(tempDir(), 'real.flac'), TONE(1), ['-c:a', 'flac']);
  fs.copyFileSync(flac, path.join(dir, 'mislabelled.wav'));
  const r = await prepareCorpus({ inputs: [dir], out: path.join(tempDir(), 'c') });
  assert.deepEqual(r.skipped, []);
  const [f] = r.manifest.files;
  assert.equal(f.decoder, 'ffmpeg');
  assert.equal(f.length, (await decodeAudio(flac, 16000)).samples.length);
  // Text under a .wav name still fails, with both readers' reasons.
  fs.writeFileSync(path.join(dir, 'notes.wav'), 'hello, this is not audio at all\n'.repeat(4));
  await assert.rejects(decodeAudio(path.join(dir, 'notes.wav')), /not a RIFF\/WAVE file .* ffmpeg cannot decode it/);
});

test('truncated FLAC and MP3 are skipped with the reason; damaged ones kept with a warning', async () => {
  const dir = path.join(tempDir(), 'audio');
  fs.mkdirSync(dir);
  for (const [ext, codec] of [
    ['flac', 'flac'],
    ['mp3', 'libmp3lame'],
  ]) {
    const whole = ffmpegFixture(path.join(dir, `whole.${ext}`), TONE(8), ['-c:a', codec]);
    const bytes = fs.readFileSync(whole);
    fs.writeFileSync(path.join(dir, `cut.${ext}`), bytes.subarray(0, Math.floor(bytes.length / 4)));
  }
  // Zeroed stretches in the middle: the decoder resyncs after each, so most of the audio is still there.
  const damaged = Buffer.from(fs.readFileSync(path.join(dir, 'whole.flac')));
  const mid = Math.floor(damaged.length / 2);
  for (let k = 0; k < 5; k++) damaged.fill(0, mid + k * 3000, mid + k * 3000 + 200);
  fs.writeFileSync(path.join(dir, 'damaged.flac'), damaged);
  const r = await prepareCorpus({ inputs: [dir], out: path.join(tempDir(), 'c') });
  assert.deepEqual(r.manifest.files.map((f) => path.basename(f.path)).sort(), [
    'damaged.flac',
    'whole.flac',
    'whole.mp3',
  ]);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0].source, /damaged\.flac$/);
  assert.match(r.warnings[0].message, /^ffmpeg reported \d+ decode error\(s\), audio kept: \[flac @ /);
  assert.equal(r.skipped.length, 2);
  for (const s of r.skipped)
    assert.match(s.reason, /^truncated or corrupt: decoded \d+\.\d\d s of the 8\.\d\d s its header declares/, s.source);
});

test('a WAV with 7 bits per sample is refused with what is unsupported', async () => {
  const wav = fs.readFileSync(ffmpegFixture(path.join(tempDir(), 'u8.wav'), TONE(0.5), ['-c:a', 'pcm_u8']));
  const dir = tempDir();
  // Writers compute block align as channels * bits / 8, which rounds to 0 here; some write 1.
  for (const align of [0, 1]) {
    const b = Buffer.from(wav);
    b.writeUInt16LE(align, 32);
    b.writeUInt16LE(7, 34);
    const f = path.join(dir, `b7-${align}.wav`);
    fs.writeFileSync(f, b);
    await assert.rejects(
      decodeAudio(f),
      /unsupported WAV encoding: PCM with 7 bit\(s\) per sample .*read natively: PCM 8/,
    );
  }
});

test('StreamTrimmer keeps exactly what silenceBounds keeps, whatever the chunking', () => {
  let seed = 7;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const cases: Float32Array[] = [];
  for (let k = 0; k < 40; k++) {
    const x = new Float32Array(Math.floor(rand() * 3000));
    // Bursts of tone at random places (frame 0, the partial last frame, the middle), the rest near silence.
    for (let b = Math.floor(rand() * 3); b > 0; b--) {
      const at = Math.floor(rand() * x.length);
      for (let i = at; i < Math.min(x.length, at + Math.floor(rand() * 300)); i++) x[i] = 0.3 * Math.sin(i);
    }
    for (let i = 0; i < x.length; i++) x[i] += (rand() - 0.5) * 1e-4;
    cases.push(x);
  }
  for (const x of cases) {
    const want = silenceBounds(x, 16000, -40);
    const t = new StreamTrimmer(16000, -40);
    const kept: number[] = [];
    for (let i = 0; i < x.length;) {
      const n = 1 + Math.floor(rand() * 400);
      kept.push(...t.push(x.subarray(i, i + n)));
      i += n;
    }
    const got = t.finish();
    if (want.end <= want.start) {
      assert.equal(got, null);
      continue;
    }
    assert.ok(got);
    kept.push(...got.kept);
    assert.deepEqual({ start: got.start, end: got.end }, want);
    // What was passed on starts at `start` and runs to the end of the stream; the caller cuts it to end.
    assert.deepEqual(Float32Array.from(kept), x.subarray(want.start));
  }
});

test('a long file is encoded through a spill file and equals the whole-file decode, trimmed', async () => {
  const dir = path.join(tempDir(), 'audio');
  fs.mkdirSync(dir);
  // 70 s at 16 kHz is over the 1 MiB of codes that travel in a message; silent ends and a silent middle.
  const x = new Float32Array(70 * 16000);
  for (let i = 16000; i < x.length - 24000; i++) if (i < 30 * 16000 || i > 40 * 16000) x[i] = 0.5 * Math.sin(i / 9);
  const file = path.join(dir, 'long.wav');
  writeWav(file, x, 16000);
  const samples = (await decodeAudio(file, 16000)).samples;
  const b = silenceBounds(samples, 16000, -50);
  const want = muLawEncode(samples.subarray(b.start, b.end));
  assert.ok(want.length > 1 << 20);

  const out = path.join(tempDir(), 'c');
  const r = await prepareCorpus({ inputs: [dir], out, trimDb: -50 });
  const m = readManifest(out);
  const [f] = m.files;
  assert.deepEqual(f.trimmed, { start: b.start, end: samples.length - b.end });
  const bin = fs.readFileSync(path.join(out, m.binaries[f.split]));
  assert.ok(Buffer.from(want).equals(bin.subarray(f.offset, f.offset + f.length)));
  assert.equal(r.decoded, 1);
  assert.deepEqual(
    fs.readdirSync(out).filter((n) => n.includes('.tmp-')),
    [],
    'no spill file is left behind',
  );
});

test('CodeSink holds small files in memory and spills large ones, cut to length', async () => {
  const dir = tempDir();
  const small = new CodeSink(path.join(dir, 'a.tmp'), 100);
  small.write(Uint8Array.of(1, 2, 3));
  small.write(Uint8Array.of(4, 5));
  assert.deepEqual(small.finish(4), Uint8Array.of(1, 2, 3, 4));
  assert.ok(!fs.existsSync(path.join(dir, 'a.tmp')));

  const big = new CodeSink(path.join(dir, 'b.tmp'), 100);
  const block = Uint8Array.from({ length: 60 }, (_, i) => i);
  big.write(block);
  big.write(block);
  big.write(block);
  assert.equal(big.finish(150), null);
  assert.deepEqual(
    new Uint8Array(fs.readFileSync(path.join(dir, 'b.tmp'))),
    Uint8Array.from([...block, ...block, ...block].slice(0, 150)),
  );

  // A decode that fails after spilling leaves no spill file behind.
  const nan = path.join(dir, 'nan.wav');
  writeWav(nan, new Float32Array(200000).fill(0.25), 16000, '32f');
  const bytes = fs.readFileSync(nan);
  bytes.writeFloatLE(NaN, bytes.length - 40);
  fs.writeFileSync(nan, bytes);
  const spillFile = path.join(dir, 's.tmp');
  const r = await decodeJob({ id: 0, source: nan, sampleRate: 16000, trimDb: null, spillFile, spillAbove: 1000 });
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /non-finite sample/);
  assert.ok(!fs.existsSync(path.join(dir, 's.tmp')));
});
