/**
 * The prompt window of `generate`: which part of the source primes the model ([start, start +
 * promptSeconds)), the real audio that followed it (to listen to beside the model's continuation),
 * and the files and spectrograms written beside the generated WAVs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { decodeAudio } from '../audio/decode.js';
import { muLawDecode, muLawEncode } from '../audio/mulaw.js';
import { spectrogramPathFor, spectrogramPng, type SpectrogramPlotOptions } from '../audio/spectrogram.js';
import { speechStart, SPEECH_BELOW_PEAK_DB } from '../audio/speech-start.js';
import { MODEL_RATE } from '../data/corpus-files.js';
import { codesToWav, MAX_GENERATE_SECONDS } from '../infer/generate.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from './options.js';

export type PromptStart = number | 'auto';

export const PROMPT_START_HELP =
  'where the prompt starts in its file, in seconds, or auto (default): skip leading silence, ' +
  `starting one 10 ms frame before the first frame within ${SPEECH_BELOW_PEAK_DB} dB of the file's loudest frame`;

/** --prompt-start: `auto` or seconds >= 0 (past the end is only known once the file is decoded). */
export function promptStartArg(v: string): PromptStart {
  if (v.trim().toLowerCase() === 'auto') return 'auto';
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('expected seconds >= 0 into the prompt file, or auto.');
  return n;
}

export interface PromptCut {
  /** sample of the source (16 kHz) where the prompt starts */
  start: number;
  prompt: Uint8Array;
  /** the source's codes after the prompt, as many as the continuation (fewer at its end); null if none */
  real: Uint8Array | null;
}

/**
 * Cuts [start, start + seconds) out of a source, given as decoded samples or as mu-law codes (a
 * corpus file); `name` is the file errors name. The speech-start rule runs on the samples the codes
 * stand for, so a corpus file and its audio start at the same place.
 */
export function cutPrompt(
  source: { samples: Float32Array } | { codes: Uint8Array },
  name: string,
  opts: { start?: PromptStart; seconds?: number; continuation: number },
): PromptCut {
  const length = 'codes' in source ? source.codes.length : source.samples.length;
  const lasts = `${(length / MODEL_RATE).toFixed(2)} s`;
  if (length === 0) throw new UsageError(`--prompt ${name} holds no audio`);
  const start = opts.start ?? 'auto';
  let at: number;
  if (start === 'auto') {
    at = speechStart('codes' in source ? muLawDecode(source.codes) : source.samples, MODEL_RATE);
  } else {
    if (typeof start !== 'number' || !Number.isFinite(start) || start < 0)
      throw new UsageError(`--prompt-start must be seconds >= 0 or auto, got ${start}`);
    at = Math.round(start * MODEL_RATE);
    if (at >= length)
      throw new UsageError(
        `--prompt-start ${start} s is at or past the end of --prompt ${name}, which lasts ${lasts}: ` +
          `pass a start below ${lasts}, or auto`,
      );
  }
  const rest = length - at;
  const keep = opts.seconds !== undefined ? Math.min(rest, Math.round(opts.seconds * MODEL_RATE)) : rest;
  if (keep > MAX_GENERATE_SECONDS * MODEL_RATE)
    throw new UsageError(
      `--prompt ${name} lasts ${(keep / MODEL_RATE).toFixed(0)} s from its start; a prompt may be at most ` +
        `${MAX_GENERATE_SECONDS} s (one hour): pass --prompt-seconds`,
    );
  const end = Math.min(length, at + keep + opts.continuation);
  const codes = (a: number, b: number) =>
    'codes' in source ? source.codes.slice(a, b) : muLawEncode(source.samples.subarray(a, b));
  return { start: at, prompt: codes(at, at + keep), real: end > at + keep ? codes(at + keep, end) : null };
}

/** Decodes a --prompt file at the model's rate and cuts its window. */
export async function promptFromFile(
  file: string,
  opts: { start?: PromptStart; seconds?: number; continuation: number },
): Promise<PromptCut> {
  if (!fs.existsSync(file)) throw new UsageError(`--prompt ${file} does not exist`);
  const audio = await decodeAudio(file, MODEL_RATE);
  return cutPrompt({ samples: audio.samples }, file, opts);
}

/** `<stem>-prompt.wav` and `<stem>-real.wav` beside the output named by --out (un-numbered). */
export function sidePaths(out: string): { prompt: string; real: string } {
  const stem = out.replace(/\.wav$/i, '');
  return { prompt: `${stem}-prompt.wav`, real: `${stem}-real.wav` };
}

const seconds = (n: number) => `${(n / MODEL_RATE).toFixed(2)}`;

/** One WAV of generate's output: its file, its codes, and what its spectrogram's title says. */
export interface WrittenAudio {
  file: string;
  codes: Uint8Array;
  title: string;
  marks?: SpectrogramPlotOptions['marks'];
}

/** What generate writes besides the continuations when a prompt was given. */
export function promptAudio(cut: PromptCut, out: string, source: string): WrittenAudio[] {
  const side = sidePaths(out);
  const from = path.basename(source);
  const end = cut.start + cut.prompt.length;
  const files: WrittenAudio[] = [
    {
      file: side.prompt,
      codes: cut.prompt,
      title: `${path.basename(side.prompt)}: the prompt, ${seconds(cut.start)}–${seconds(end)} s of ${from}`,
    },
  ];
  if (cut.real)
    files.push({
      file: side.real,
      codes: cut.real,
      title:
        `${path.basename(side.real)}: what really followed, ` +
        `${seconds(end)}–${seconds(end + cut.real.length)} s of ${from}`,
    });
  return files;
}

/** Writes each WAV, and with `spectrograms` its picture beside it; returns the pictures written. */
export function writeAudio(files: WrittenAudio[], spectrograms: boolean): string[] {
  const pictures: string[] = [];
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.resolve(f.file)), { recursive: true });
    codesToWav(f.file, f.codes, MODEL_RATE);
    if (!spectrograms || f.codes.length === 0) continue;
    const png = spectrogramPathFor(f.file);
    writeFileAtomic(png, spectrogramPng(muLawDecode(f.codes), MODEL_RATE, { title: f.title, marks: f.marks }));
    pictures.push(png);
  }
  return pictures;
}
