/**
 * Spectrograms: the STFT against a naive O(N^2) DFT written here from the definition, the Hann
 * window's known main lobe, the frame-count formula against a direct search, the 0 dB reference,
 * and the PNG decoded back with pngjs (size, the sine's row bright, silence dark, text drawn); then
 * the `ctspeech spectrogram` command and its errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import pngjs from 'pngjs';
import { COLORMAP } from '../src/audio/colormap.js';
import {
  readForSpectrogram,
  spectrogram,
  spectrogramPng,
  stftFrameCount,
  stftLayout,
  wavSpectrogramPng,
} from '../src/audio/spectrogram.js';
import { PLOT_AREA, PLOT_HEIGHT, PLOT_WIDTH } from '../src/audio/spectrogram-plot.js';
import { writeWav } from '../src/audio/wav.js';
import { runSpectrogram, registerSpectrogram } from '../src/cli/spectrogram.js';
import { UserError } from '../src/util/errors.js';
import { CLI, SAMPLES, sine, tempDir } from './helpers.js';

const { PNG } = pngjs;

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** |DFT| of one frame from the definition, zero-padded to `size`, scaled so a bin-centred sine of amplitude A is A. */
function naiveFrame(x: Float32Array, from: number, win: number, size: number, bins: number): Float64Array {
  const w = Array.from({ length: win }, (_, n) => Math.sin((Math.PI * n) / win) ** 2); // periodic Hann
  const norm = 2 / w.reduce((a, b) => a + b, 0);
  const out = new Float64Array(bins);
  for (let k = 0; k < bins; k++) {
    let re = 0;
    let im = 0;
    for (let n = 0; n < win && from + n < x.length; n++) {
      const v = x[from + n] * w[n];
      re += v * Math.cos((2 * Math.PI * k * n) / size);
      im -= v * Math.sin((2 * Math.PI * k * n) / size);
    }
    out[k] = Math.hypot(re, im) * norm;
  }
  return out;
}

function noisyChord(n: number, rate: number): Float32Array {
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  const a = sine(n, rate, 440, 0.3);
  const b = sine(n, rate, 3170.5, 0.1);
  return Float32Array.from({ length: n }, (_, i) => a[i] + b[i] + 0.01 * rand());
}

test('layout: 25 ms windows, 10 ms hop, next power-of-two FFT, bins up to 8 kHz or Nyquist', () => {
  assert.deepEqual(stftLayout(16000), {
    sampleRate: 16000,
    window: 400,
    hop: 160,
    fftSize: 512,
    binHz: 31.25,
    bins: 257,
    maxHz: 8000,
  });
  const eight = stftLayout(8000);
  assert.deepEqual([eight.window, eight.hop, eight.fftSize, eight.bins, eight.maxHz], [200, 80, 256, 129, 4000]);
  const cd = stftLayout(44100);
  assert.deepEqual([cd.window, cd.hop, cd.fftSize], [1103, 441, 2048]);
  assert.equal(cd.bins, Math.floor(8000 / (44100 / 2048)) + 1, 'bins at or below 8 kHz');
});

test('frame count: the fewest hops whose last window reaches the last sample', () => {
  for (const [win, hop] of [
    [400, 160],
    [200, 80],
    [5, 3],
  ])
    for (let n = 1; n < 3 * win; n += 7) {
      let frames = 1;
      while ((frames - 1) * hop + win < n) frames++;
      assert.equal(stftFrameCount(n, win, hop), frames, `n ${n}, window ${win}, hop ${hop}`);
    }
  assert.equal(stftFrameCount(0, 400, 160), 0);
  assert.equal(spectrogram(new Float32Array(16000), 16000).frames, 1 + Math.ceil((16000 - 400) / 160));
});

test('the STFT matches a naive DFT of each Hann-windowed frame to 1e-4, zero-padded last frame included', () => {
  const rate = 16000;
  const x = noisyChord(4321, rate);
  const s = spectrogram(x, rate);
  assert.equal(s.frames, stftFrameCount(x.length, 400, 160));
  for (const t of [0, 7, s.frames - 1]) {
    const ref = naiveFrame(x, t * s.hop, s.window, s.fftSize, s.bins);
    for (let k = 0; k < s.bins; k++) {
      const got = Math.pow(10, s.db[t * s.bins + k] / 20);
      assert.ok(Math.abs(got - ref[k]) <= 1e-4 * ref[k], `frame ${t} bin ${k}: ${got} vs ${ref[k]}`);
    }
  }
  assert.equal(s.floorDb, s.maxDb - 80);
  assert.equal(s.maxDb, Math.max(...s.db));
});

test('a sine peaks at its bin: 0 dB is a full-scale sine, neighbours on the Hann main lobe', () => {
  const rate = 16000;
  // One 512-point bin is d = 400/512 bins of the 400-sample window; the Hann transform there is
  // sinc(d) / (1 - d^2) of its peak (the continuous-time formula; N = 400 makes the difference tiny).
  const d = 400 / 512;
  const lobeDb = 20 * Math.log10(Math.sin(Math.PI * d) / (Math.PI * d) / (1 - d * d));
  const s = spectrogram(Float32Array.from(sine(16000, rate, 1000, 0.5)), rate); // bin 32 exactly
  // Every whole window (the last frame is zero-padded: a shorter sine, a wider lobe).
  for (let t = 0; t * s.hop + s.window <= 16000; t++) {
    const row = s.db.subarray(t * s.bins, (t + 1) * s.bins);
    assert.equal(row.indexOf(Math.max(...row)), 32, `frame ${t}`);
    assert.ok(Math.abs(row[32] - 20 * Math.log10(0.5)) < 1e-3, `frame ${t}: ${row[32]} dB`);
    for (const k of [31, 33])
      assert.ok(Math.abs(row[k] - row[32] - lobeDb) < 0.01, `frame ${t}: bin ${k} at ${row[k] - row[32]} dB`);
    assert.ok(row[100] < row[32] - 80, `frame ${t}: far bins below the 80 dB range`);
  }
  const off = spectrogram(Float32Array.from(sine(8000, 8000, 2345.6, 0.9)), 8000);
  const mid = off.db.subarray(10 * off.bins, 11 * off.bins);
  assert.equal(mid.indexOf(Math.max(...mid)), Math.round(2345.6 / off.binHz), '8 kHz audio: the nearest bin');
});

function luma(r: number, g: number, b: number): number {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

test('the colour ramp brightens monotonically from dark to light', () => {
  const l = Array.from({ length: 256 }, (_, i) => luma(COLORMAP[3 * i], COLORMAP[3 * i + 1], COLORMAP[3 * i + 2]));
  for (let i = 1; i < 256; i++) assert.ok(l[i] >= l[i - 1] - 0.5, `entry ${i}: ${l[i]} after ${l[i - 1]}`);
  assert.ok(l[0] < 15 && l[255] > 220, `from ${l[0]} to ${l[255]}`);
});

test('the PNG: 900 px wide whatever the duration, the sine row bright, the rest dark, text drawn', () => {
  const rate = 16000;
  for (const seconds of [0.3, 30]) {
    const x = Float32Array.from(sine(Math.round(seconds * rate), rate, 1000, 0.5));
    const png = PNG.sync.read(Buffer.from(spectrogramPng(x, rate, { title: 'a 1 kHz sine' })));
    assert.equal(png.width, PLOT_WIDTH);
    assert.equal(png.height, PLOT_HEIGHT);
    const px = (x: number, y: number) => [...png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3)];
    const cx = PLOT_AREA.x + Math.round(PLOT_AREA.width / 2);
    const rowOf = (hz: number) => Math.round(PLOT_AREA.y + PLOT_AREA.height * (1 - hz / 8000));
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 3);
    const top = [...COLORMAP.subarray(3 * 255, 3 * 256)];
    const bottom = [...COLORMAP.subarray(0, 3)];
    let brightest = PLOT_AREA.y;
    for (let y = PLOT_AREA.y; y < PLOT_AREA.y + PLOT_AREA.height; y++)
      if (luma(...(px(cx, y) as [number, number, number])) > luma(...(px(cx, brightest) as [number, number, number])))
        brightest = y;
    assert.ok(
      Math.abs(brightest - rowOf(1000)) <= 1,
      `${seconds} s: brightest row ${brightest}, 1 kHz at ${rowOf(1000)}`,
    );
    assert.ok(near(px(cx, brightest), top), `${seconds} s: 1 kHz is the loudest colour, got ${px(cx, brightest)}`);
    assert.ok(near(px(cx, rowOf(5000)), bottom), `${seconds} s: 5 kHz is the floor colour, got ${px(cx, rowOf(5000))}`);
    // Title and axis labels: dark text on the white margins.
    const dark = (x0: number, y0: number, x1: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) if (luma(...(px(x, y) as [number, number, number])) < 100) n++;
      return n;
    };
    assert.ok(dark(PLOT_AREA.x, 5, PLOT_AREA.x + 200, 28) > 50, 'the title is drawn');
    const below = PLOT_AREA.y + PLOT_AREA.height + 8;
    assert.ok(dark(PLOT_AREA.x, below, PLOT_AREA.x + PLOT_AREA.width, below + 35) > 100, 'time labels');
    assert.ok(dark(0, PLOT_AREA.y, PLOT_AREA.x - 6, PLOT_AREA.y + PLOT_AREA.height) > 100, 'frequency labels');
  }
  assert.throws(() => spectrogram(new Float32Array(0), 16000), /no samples/);
  // Digital silence draws (at the floor) instead of failing on -Infinity.
  assert.equal(PNG.sync.read(Buffer.from(spectrogramPng(new Float32Array(800), rate))).width, PLOT_WIDTH);
});

test('files: a WAV is read at its own rate, other formats at 16 kHz', async () => {
  const dir = tempDir('ctspeech-spec-');
  const wav8k = path.join(dir, 'tone.wav');
  writeWav(wav8k, Float32Array.from(sine(4000, 8000, 700, 0.5)), 8000);
  assert.equal((await readForSpectrogram(wav8k)).sampleRate, 8000);
  const flac = await readForSpectrogram(path.join(SAMPLES, 'test', 'vm-newuser.flac'));
  assert.equal(flac.sampleRate, 16000);
  const png = PNG.sync.read(Buffer.from(await wavSpectrogramPng(wav8k)));
  assert.equal(png.width, PLOT_WIDTH);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('ctspeech spectrogram: writes the PNG, by default beside the WAV; errors name the file or flag', async () => {
  const dir = tempDir('ctspeech-spec-cli-');
  const wav = path.join(dir, 'clip.wav');
  writeWav(wav, Float32Array.from(sine(8000, 16000, 500, 0.3)), 16000);
  const out = path.join(dir, 'pics', 'clip.png');
  const a = cli('spectrogram', wav, '--out', out, '--title', 'half a second of 500 Hz');
  assert.equal(a.code, 0, a.err);
  assert.equal(PNG.sync.read(fs.readFileSync(out)).width, PLOT_WIDTH);
  // The exit status of a UsageError (2) is the command line's, checked once here.
  for (const [args, msg] of [
    [[path.join(dir, 'missing.wav')], /missing\.wav does not exist/],
    [[], /missing required argument 'audio'/],
  ] as const) {
    const r = cli('spectrogram', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.match(r.err, msg, args.join(' '));
  }
  const program = new Command();
  registerSpectrogram(program);
  const help = program.commands[0].helpInformation() + program.commands[0].description();
  for (const taught of [/25 ms Hann window/, /every 10 ms/, /0 to 8 kHz/, /80 dB/, /<audio>/])
    assert.match(help, taught);
  const quiet = console.log;
  console.log = () => {};
  try {
    assert.equal(await runSpectrogram(wav, {}), path.join(dir, 'clip.spectrogram.png'), 'default name beside the WAV');
  } finally {
    console.log = quiet;
  }
  assert.ok(fs.existsSync(path.join(dir, 'clip.spectrogram.png')));
  const junk = path.join(dir, 'junk.wav');
  fs.writeFileSync(junk, 'not audio at all, only words');
  const bad = path.join(dir, 'bad.png');
  const cases: [string, string, RegExp][] = [
    [junk, bad, /junk\.wav: not a RIFF\/WAVE file/],
    [dir, bad, /is a folder: name an audio file/],
    [wav, path.join(dir, 'clip.jpg'), /--out must name a \.png file, got .*clip\.jpg/],
    [wav, dir, /--out must name a \.png file/],
  ];
  for (const [audio, to, msg] of cases)
    await assert.rejects(
      runSpectrogram(audio, { out: to }),
      (e: Error) => e instanceof UserError && msg.test(e.message),
    );
  assert.equal(fs.existsSync(bad), false, 'nothing written on an error');
  fs.rmSync(dir, { recursive: true, force: true });
});
