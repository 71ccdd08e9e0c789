/**
 * Log-magnitude spectrograms of mono audio, for people listening to generated speech: a short-time
 * Fourier transform (25 ms periodic Hann windows every 10 ms, the usual speech analysis frames)
 * drawn 0-8 kHz over an 80 dB range, rendered as a PNG with real axes (spectrogram-plot.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import FFT from 'fft.js';
import { decodeAudio, WAV_EXTENSIONS } from './decode.js';
import { AudioDecodeError } from './errors.js';
import { spectrogramSvg, type SpectrogramPlotOptions } from './spectrogram-plot.js';
import { probeWav } from './wav.js';
import { svgToPng } from '../util/svg-png.js';

export type { SpectrogramMark, SpectrogramPlotOptions } from './spectrogram-plot.js';

export const STFT_WINDOW_SECONDS = 0.025;
export const STFT_HOP_SECONDS = 0.01;
/** Speech carries little above 8 kHz, and the models' 16 kHz audio has nothing there. */
export const SPECTROGRAM_MAX_HZ = 8000;
export const SPECTROGRAM_RANGE_DB = 80;
/** Floor of the magnitude before the log, so digital silence is a very low level, not -Infinity. */
const MIN_MAGNITUDE = 1e-10;

export interface StftLayout {
  sampleRate: number;
  /** window length in samples (25 ms) */
  window: number;
  /** hop in samples (10 ms) */
  hop: number;
  /** FFT size: the next power of two at or above the window (zero-padded) */
  fftSize: number;
  /** Hz between bins: sampleRate / fftSize */
  binHz: number;
  /** bins kept: 0 Hz up to min(8 kHz, Nyquist), inclusive */
  bins: number;
  /** top of the frequency axis in Hz */
  maxHz: number;
}

export interface Spectrogram extends StftLayout {
  frames: number;
  /** dB per frame and bin, frame-major: db[t * bins + k]; 0 dB is a full-scale sine's peak */
  db: Float32Array;
  /** loudest bin of any frame, and the bottom of the shown range (maxDb - 80) */
  maxDb: number;
  floorDb: number;
  /** seconds of audio analysed */
  duration: number;
}

export function stftLayout(sampleRate: number): StftLayout {
  if (!(Number.isFinite(sampleRate) && sampleRate > 0))
    throw new RangeError(`sample rate must be a positive number, got ${sampleRate}`);
  const window = Math.max(2, Math.round(STFT_WINDOW_SECONDS * sampleRate));
  const hop = Math.max(1, Math.round(STFT_HOP_SECONDS * sampleRate));
  // fft.js needs a power of two of at least 4.
  let fftSize = 4;
  while (fftSize < window) fftSize *= 2;
  const binHz = sampleRate / fftSize;
  const maxHz = Math.min(SPECTROGRAM_MAX_HZ, sampleRate / 2);
  const bins = Math.floor(maxHz / binHz + 1e-9) + 1;
  return { sampleRate, window, hop, fftSize, binHz, bins, maxHz };
}

/**
 * Frames over n samples: one at every hop while a whole window fits, plus one more (zero-padded)
 * when samples remain past the last whole window, so the end of the audio is drawn too.
 */
export function stftFrameCount(n: number, window: number, hop: number): number {
  if (n <= 0) return 0;
  return 1 + Math.ceil(Math.max(0, n - window) / hop);
}

/** Periodic Hann (as scipy.signal.stft and librosa use): overlapping windows at 40% hop stay smooth. */
export function hannWindow(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
}

export function spectrogram(samples: Float32Array, sampleRate: number): Spectrogram {
  const layout = stftLayout(sampleRate);
  const { window, hop, fftSize, bins } = layout;
  if (samples.length === 0) throw new RangeError('no samples to analyse');
  const frames = stftFrameCount(samples.length, window, hop);
  const w = hannWindow(window);
  // A sine of amplitude A centred on a bin peaks at A * sum(w) / 2: scale so that is A, i.e. 0 dB
  // for a full-scale sine, which makes the colour bar a level a person can relate to.
  const scale = 2 / w.reduce((a, x) => a + x, 0);
  const fft = new FFT(fftSize);
  const input = new Float64Array(fftSize);
  const out = new Float64Array(2 * fftSize);
  const db = new Float32Array(frames * bins);
  let maxDb = -Infinity;
  for (let t = 0; t < frames; t++) {
    const a = t * hop;
    input.fill(0);
    for (let i = 0; i < window && a + i < samples.length; i++) input[i] = samples[a + i] * w[i];
    fft.realTransform(out, input);
    for (let k = 0; k < bins; k++) {
      const mag = Math.hypot(out[2 * k], out[2 * k + 1]) * scale;
      db[t * bins + k] = 20 * Math.log10(Math.max(MIN_MAGNITUDE, mag));
      if (db[t * bins + k] > maxDb) maxDb = db[t * bins + k];
    }
  }
  return {
    ...layout,
    frames,
    db,
    maxDb,
    floorDb: maxDb - SPECTROGRAM_RANGE_DB,
    duration: samples.length / sampleRate,
  };
}

/** The spectrogram of `samples` as a PNG about 900 px wide, whatever the duration. */
export function spectrogramPng(
  samples: Float32Array,
  sampleRate: number,
  opts: SpectrogramPlotOptions = {},
): Uint8Array {
  return svgToPng(spectrogramSvg(spectrogram(samples, sampleRate), opts));
}

/**
 * Reads an audio file for a spectrogram: a WAV at its own rate (nothing resampled, an 8 kHz file
 * shows its own 4 kHz band), anything else through ffmpeg at 16 kHz, which keeps the 0-8 kHz shown.
 */
export async function readForSpectrogram(file: string): Promise<{ samples: Float32Array; sampleRate: number }> {
  if (!fs.existsSync(file)) throw new AudioDecodeError(file, 'no such file');
  let rate = 16000;
  if (WAV_EXTENSIONS.has(path.extname(file).toLowerCase())) {
    try {
      rate = probeWav(file).sampleRate;
    } catch {
      // Not a readable RIFF WAV (a FLAC under a .wav name, ADPCM ...): decodeAudio tries ffmpeg and
      // words the error if that fails too.
    }
  }
  const audio = await decodeAudio(file, rate);
  return { samples: audio.samples, sampleRate: audio.sampleRate };
}

/** The spectrogram of an audio file (WAV at its own rate, other formats at 16 kHz) as a PNG. */
export async function wavSpectrogramPng(file: string, opts: SpectrogramPlotOptions = {}): Promise<Uint8Array> {
  const { samples, sampleRate } = await readForSpectrogram(file);
  return spectrogramPng(samples, sampleRate, { title: path.basename(file), ...opts });
}

/** `out/seed1.wav` -> `out/seed1.spectrogram.png`: the name generate and the CLI give a WAV's picture. */
export function spectrogramPathFor(wav: string): string {
  return wav.replace(/\.[^./\\]+$/, '') + '.spectrogram.png';
}
