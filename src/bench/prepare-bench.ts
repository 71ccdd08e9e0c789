import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeAudio } from '../audio/decode.js';
import { muLawEncode } from '../audio/mulaw.js';
import { resample } from '../audio/resample.js';
import { writeWav } from '../audio/wav.js';
import { prepareCorpus } from '../data/prepare.js';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  note: string;
}

/** Run `fn` until at least `minMs` has passed; return the median per-call seconds of the runs. */
async function timeIt(fn: () => unknown | Promise<unknown>, minMs = 1500, maxRuns = 50): Promise<number> {
  const times: number[] = [];
  const t0 = performance.now();
  while ((performance.now() - t0 < minMs || times.length < 3) && times.length < maxRuns) {
    const a = performance.now();
    await fn();
    times.push((performance.now() - a) / 1000);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

function speechLike(n: number, seed = 1): Float32Array {
  // Laplacian amplitudes roughly match speech's code distribution, so the encoder's search depth is realistic.
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 0.5) / 2 ** 32 - 0.5;
    out[i] = Math.max(-1, Math.min(1, -0.08 * Math.sign(u) * Math.log(1 - 2 * Math.abs(u))));
  }
  return out;
}

function listAudio(dir: string, ext: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.toLowerCase().endsWith(ext)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** The prepare figures of BENCHMARKS.md, on the bundled samples plus synthetic signals. */
export async function benchPrepare(samplesDir: string, log: (s: string) => void = () => {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const sr = 16000;

  const x = speechLike(sr * 60);
  const codes = new Uint8Array(x.length);
  const tEnc = await timeIt(() => muLawEncode(x, codes));
  rows.push({ name: 'mu-law encode', value: x.length / tEnc, unit: 'samples/s', note: '60 s of speech-like float32' });
  log('mu-law done');

  const wavs = listAudio(samplesDir, '.wav');
  if (wavs.length) {
    let seconds = 0;
    const t = await timeIt(async () => {
      seconds = 0;
      for (const f of wavs) {
        const a = await decodeAudio(f, sr);
        muLawEncode(a.samples);
        seconds += a.samples.length / sr;
      }
    });
    rows.push({
      name: 'WAV decode + mu-law (16-bit, 16 kHz)',
      value: seconds / t,
      unit: 'audio s / wall s',
      note: `${wavs.length} files, ${seconds.toFixed(1)} s, one thread`,
    });
    log('wav done');
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-bench-'));
  try {
    const hi = 44100;
    const long = speechLike(hi * 30, 7);
    const wav44 = path.join(tmp, 'speech44k.wav');
    writeWav(wav44, long, hi);
    const t44 = await timeIt(async () => muLawEncode((await decodeAudio(wav44, sr)).samples));
    rows.push({
      name: 'WAV decode + resample 44.1->16 kHz + mu-law',
      value: 30 / t44,
      unit: 'audio s / wall s',
      note: '30 s 16-bit mono, one thread',
    });
    const tRs = await timeIt(() => resample(long, hi, sr));
    rows.push({
      name: 'resample 44.1 -> 16 kHz alone',
      value: 30 / tRs,
      unit: 'audio s / wall s',
      note: 'windowed-sinc polyphase',
    });
    log('resample done');

    const flacs = [
      ...listAudio(samplesDir, '.flac'),
      ...listAudio(samplesDir, '.g722'),
      ...listAudio(samplesDir, '.opus'),
    ];
    if (flacs.length) {
      let seconds = 0;
      const t = await timeIt(async () => {
        seconds = 0;
        for (const f of flacs) {
          const a = await decodeAudio(f, sr);
          muLawEncode(a.samples);
          seconds += a.samples.length / sr;
        }
      });
      rows.push({
        name: 'ffmpeg decode + mu-law (FLAC/G.722/Opus)',
        value: seconds / t,
        unit: 'audio s / wall s',
        note: `${flacs.length} files, ${seconds.toFixed(1)} s, process spawn included`,
      });
      log('ffmpeg done');
    }

    // Resampling 44.1 kHz WAVs is CPU-bound per file: this is where decoder threads should scale.
    const many = path.join(tmp, 'many');
    fs.mkdirSync(many);
    for (let k = 0; k < 8; k++) fs.copyFileSync(wav44, path.join(many, `f${k}.wav`));
    for (const [label, input] of [
      ['samples/', samplesDir],
      ['8 x 30 s 44.1 kHz WAV', many],
    ] as const) {
      for (const workers of [1, os.availableParallelism()]) {
        let seconds = 0;
        const t = await timeIt(
          async () => {
            const r = await prepareCorpus({
              inputs: [input],
              out: path.join(tmp, `corpus-${workers}`),
              workers,
              force: true,
            });
            seconds = r.manifest.files.reduce((a, f) => a + f.length, 0) / sr;
          },
          1000,
          5,
        );
        rows.push({
          name: `prepare ${label} (${workers} worker${workers > 1 ? 's' : ''})`,
          value: seconds / t,
          unit: 'audio s / wall s',
          note: `${seconds.toFixed(1)} s of audio, worker start-up included`,
        });
      }
    }
    log('prepare done');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
