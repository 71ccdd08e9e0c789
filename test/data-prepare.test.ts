import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawEncode } from '../src/audio/mulaw.js';
import { readManifest, SPLITS } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { hashSplit } from '../src/data/scan.js';
import { corpusStats, entropyNats } from '../src/data/stats.js';
import { silenceBounds } from '../src/data/trim.js';
import { ffmpegFixture, tempDir } from './helpers.js';

/** A small tree: train/valid/test folders with WAV and FLAC, a corrupt file and a README. */
function makeTree(root: string): void {
  const tone = (f: number, d: number, rate = 16000) => `aevalsrc=0.4*sin(2*PI*${f}*t)*sin(2*PI*3*t):s=${rate}:d=${d}`;
  for (const s of ['train/spk1', 'valid', 'test']) fs.mkdirSync(path.join(root, s), { recursive: true });
  ffmpegFixture(path.join(root, 'train/spk1/a.wav'), tone(300, 0.5), ['-c:a', 'pcm_s16le']);
  ffmpegFixture(path.join(root, 'train/spk1/b.wav'), tone(500, 0.3, 44100), ['-c:a', 'pcm_s24le', '-ac', '2']);
  ffmpegFixture(path.join(root, 'train/c.flac'), tone(700, 0.4, 22050), ['-c:a', 'flac']);
  ffmpegFixture(path.join(root, 'valid/v.wav'), tone(400, 0.25), ['-c:a', 'pcm_f32le']);
  ffmpegFixture(path.join(root, 'test/t.flac'), tone(600, 0.2), ['-c:a', 'flac']);
  fs.writeFileSync(path.join(root, 'train/broken.wav'), 'RIFF....WAVEnot really');
  fs.writeFileSync(path.join(root, 'README.txt'), 'not audio');
}

test('prepare writes codes equal to decode + mu-law of each file, split by folders', async () => {
  const root = tempDir();
  const inp = path.join(root, 'audio');
  makeTree(inp);
  const out = path.join(root, 'corpus');
  const r = await prepareCorpus({ inputs: [inp], out, workers: 2 });
  assert.equal(r.decoded, 5);
  assert.equal(r.ignored, 1);
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0].source, /broken\.wav$/);
  const m = readManifest(out);
  assert.deepEqual(
    m.files.map((f) => [f.path, f.split, f.splitBy]),
    [
      ['audio/test/t.flac', 'test', 'folder'],
      ['audio/train/c.flac', 'train', 'folder'],
      ['audio/train/spk1/a.wav', 'train', 'folder'],
      ['audio/train/spk1/b.wav', 'train', 'folder'],
      ['audio/valid/v.wav', 'valid', 'folder'],
    ],
  );
  for (const f of m.files) {
    const bin = fs.readFileSync(path.join(out, m.binaries[f.split]));
    const want = muLawEncode((await decodeAudio(f.source, 16000)).samples);
    assert.deepEqual(bin.subarray(f.offset, f.offset + f.length), Buffer.from(want), f.path);
  }
  const b = m.files.find((f) => f.path.endsWith('b.wav'))!;
  assert.equal(b.sourceRate, 44100);
  assert.equal(b.channels, 2);
  assert.ok(Math.abs(b.length - 0.3 * 16000) <= 1);
  // Offsets within each split are contiguous from 0.
  for (const s of SPLITS) {
    let at = 0;
    for (const f of m.files.filter((x) => x.split === s).sort((x, y) => x.offset - y.offset)) {
      assert.equal(f.offset, at);
      at += f.length;
    }
    assert.equal(fs.statSync(path.join(out, m.binaries[s])).size, at);
  }
});

test('re-prepare decodes only what changed, drops removed files and old binaries', async () => {
  const root = tempDir();
  const inp = path.join(root, 'audio');
  makeTree(inp);
  const out = path.join(root, 'corpus');
  const first = await prepareCorpus({ inputs: [inp], out });
  const firstBytes = SPLITS.map((s) => fs.readFileSync(path.join(out, first.manifest.binaries[s])));
  const again = await prepareCorpus({ inputs: [inp], out });
  assert.equal(again.decoded, 0);
  assert.equal(again.reused, 5);
  const m1 = first.manifest;
  const m2 = readManifest(out);
  assert.notDeepEqual(m2.binaries, m1.binaries, 'a new generation is written');
  SPLITS.forEach((s, k) =>
    assert.deepEqual(fs.readFileSync(path.join(out, m2.binaries[s])), firstBytes[k], `${s} codes reused byte for byte`),
  );
  assert.deepEqual(
    m2.files.map((f) => [f.path, f.length]),
    m1.files.map((f) => [f.path, f.length]),
  );

  ffmpegFixture(path.join(inp, 'train/spk1/a.wav'), 'aevalsrc=0.3*sin(2*PI*900*t):s=16000:d=0.6', [
    '-c:a',
    'pcm_s16le',
  ]);
  fs.rmSync(path.join(inp, 'valid/v.wav'));
  const third = await prepareCorpus({ inputs: [inp], out });
  assert.equal(third.decoded, 1);
  assert.equal(third.reused, 3);
  assert.equal(third.removed, 1);
  const m3 = readManifest(out);
  assert.equal(m3.files.find((f) => f.path.endsWith('a.wav'))!.length, 9600);
  assert.ok(!m3.files.some((f) => f.path.endsWith('v.wav')));
  const binaries = fs
    .readdirSync(out)
    .filter((n) => n.endsWith('.u8'))
    .sort();
  assert.deepEqual(binaries, Object.values(m3.binaries).sort(), 'only the live generation remains');
  // Reused codes are byte-identical to a fresh decode.
  const c = m3.files.find((f) => f.path.endsWith('c.flac'))!;
  const fresh = muLawEncode((await decodeAudio(c.source, 16000)).samples);
  assert.deepEqual(
    fs.readFileSync(path.join(out, m3.binaries.train)).subarray(c.offset, c.offset + c.length),
    Buffer.from(fresh),
  );

  const resampled = await prepareCorpus({ inputs: [inp], out, sampleRate: 8000 });
  assert.match(resampled.rebuiltBecause ?? '', /sample rate changed/);
  assert.equal(resampled.decoded, 4);
});

test('hash splits are deterministic, stable and near the requested fractions', () => {
  const f = { validFraction: 0.1, testFraction: 0.2 };
  const counts = { train: 0, valid: 0, test: 0 };
  for (let i = 0; i < 20000; i++) counts[hashSplit(`spk${i % 37}/utt${i}.wav`, f)]++;
  assert.ok(Math.abs(counts.test / 20000 - 0.2) < 0.015, JSON.stringify(counts));
  assert.ok(Math.abs(counts.valid / 20000 - 0.1) < 0.015, JSON.stringify(counts));
  assert.equal(hashSplit('a/b.wav', f), hashSplit('a/b.wav', { ...f }));
  // Raising the test share only moves files into test, never between train and valid.
  for (let i = 0; i < 2000; i++) {
    const p = `x${i}.wav`;
    const before = hashSplit(p, { validFraction: 0.1, testFraction: 0.1 });
    const after = hashSplit(p, { validFraction: 0.1, testFraction: 0.2 });
    if (before === 'test') assert.equal(after, 'test');
  }
});

test('hash-split corpus without split folders, and trimming of silence', async () => {
  const root = tempDir();
  const inp = path.join(root, 'flat');
  fs.mkdirSync(inp);
  // 0.5 s silence, 0.5 s tone, 0.5 s silence
  ffmpegFixture(
    path.join(inp, 'padded.wav'),
    'aevalsrc=if(between(t\\,0.5\\,1)\\,0.5*sin(2*PI*440*t)\\,0):s=16000:d=1.5',
    ['-c:a', 'pcm_s16le'],
  );
  ffmpegFixture(path.join(inp, 'silent.wav'), 'aevalsrc=0:s=16000:d=0.5', ['-c:a', 'pcm_s16le']);
  const r = await prepareCorpus({ inputs: [inp], out: path.join(root, 'c'), trimDb: -40 });
  const padded = r.manifest.files.find((f) => f.path.endsWith('padded.wav'))!;
  assert.equal(padded.splitBy, 'hash');
  assert.ok(padded.length >= 8000 && padded.length <= 8000 + 4 * 160, `kept ${padded.length}`);
  assert.ok(padded.trimmed.start >= 8000 - 2 * 160 && padded.trimmed.start <= 8000);
  assert.match(r.skipped.find((s) => s.source.endsWith('silent.wav'))!.reason, /silent/);
});

test('silenceBounds keeps the loud region with a one-frame margin', () => {
  const x = new Float32Array(16000);
  for (let i = 4000; i < 8000; i++) x[i] = 0.5;
  assert.deepEqual(silenceBounds(x, 16000, -30), { start: 4000 - 160, end: 8000 + 160 });
  assert.deepEqual(silenceBounds(new Float32Array(100), 16000, -30), { start: 0, end: 0 });
  assert.throws(() => silenceBounds(x, 16000, 3), /negative dBFS/);
});

test('entropy matches the definition and the split statistics', async () => {
  assert.ok(Math.abs(entropyNats(new Array(256).fill(5)) - Math.log(256)) < 1e-12);
  assert.equal(entropyNats([10, 0, 0]), 0);
  assert.ok(Math.abs(entropyNats([1, 1, 2]) - (-(0.25 * Math.log(0.25)) * 2 - 0.5 * Math.log(0.5))) < 1e-12);
  const root = tempDir();
  const inp = path.join(root, 'audio');
  makeTree(inp);
  const out = path.join(root, 'corpus');
  const r = await prepareCorpus({ inputs: [inp], out });
  const stats = corpusStats(out, r.manifest);
  const train = stats.find((s) => s.split === 'train')!;
  const bin = fs.readFileSync(path.join(out, r.manifest.binaries.train));
  const counts = new Map<number, number>();
  for (const b of bin) counts.set(b, (counts.get(b) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) h -= (c / bin.length) * Math.log(c / bin.length);
  assert.ok(Math.abs(train.entropyNats - h) < 1e-9);
  assert.ok(Math.abs(train.entropyBits - h / Math.LN2) < 1e-9);
  assert.equal(train.samples, bin.length);
});

test('bad prepare arguments are clear errors', async () => {
  const root = tempDir();
  await assert.rejects(
    prepareCorpus({ inputs: [path.join(root, 'nope')], out: path.join(root, 'c') }),
    /input .*nope does not exist/,
  );
  fs.writeFileSync(path.join(root, 'file'), 'x');
  fs.mkdirSync(path.join(root, 'in'));
  await assert.rejects(
    prepareCorpus({ inputs: [path.join(root, 'in')], out: path.join(root, 'file') }),
    /output .*file exists and is not a folder/,
  );
  await assert.rejects(
    prepareCorpus({
      inputs: [path.join(root, 'in')],
      out: path.join(root, 'c'),
      validFraction: 0.6,
      testFraction: 0.5,
    }),
    /--valid \+ --test/,
  );
  await assert.rejects(
    prepareCorpus({ inputs: [path.join(root, 'in')], out: path.join(root, 'c'), sampleRate: 12.5 }),
    /--sample-rate/,
  );
});

test('a corrupt previous manifest is rebuilt, not trusted', async () => {
  const root = tempDir();
  const inp = path.join(root, 'audio');
  makeTree(inp);
  const out = path.join(root, 'corpus');
  await prepareCorpus({ inputs: [inp], out });
  fs.writeFileSync(path.join(out, 'manifest.json'), '{"format": "ctspeech-corpus", "version": 1, "files": [');
  const r = await prepareCorpus({ inputs: [inp], out });
  assert.match(r.rebuiltBecause ?? '', /unreadable/);
  assert.equal(r.decoded, 5);
  assert.throws(() => readManifest(path.join(root, 'audio')), /not a prepared corpus/);
});

test('a damaged corpus is reported by name, not as a raw I/O error', async () => {
  const root = tempDir();
  const inp = path.join(root, 'audio');
  makeTree(inp);
  const out = path.join(root, 'corpus');
  const r = await prepareCorpus({ inputs: [inp], out });
  const bin = path.join(out, r.manifest.binaries.train);
  fs.truncateSync(bin, 100);
  assert.throws(() => corpusStats(out, readManifest(out)), /is damaged: codes-train-.*ends at byte 100/);
  fs.rmSync(bin);
  assert.throws(() => corpusStats(out, readManifest(out)), /is damaged: codes-train-.* cannot be opened \(ENOENT\)/);
  // prepare notices the missing binary and rebuilds rather than reusing codes it cannot read.
  const again = await prepareCorpus({ inputs: [inp], out });
  assert.match(again.rebuiltBecause ?? '', /missing or truncated/);
  assert.equal(again.decoded, 5);
});
