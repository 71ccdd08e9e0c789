import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ffmpegBinary } from '../src/audio/ffmpeg.js';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const SAMPLES = path.join(REPO, 'samples', 'speech');
export const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

export function tempDir(prefix = 'ctspeech-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Fixtures are written by ffmpeg, an encoder independent of ours, from an analytic signal
 * (aevalsrc computes in double precision), so decoding is checked against the formula.
 */
export function ffmpegFixture(out: string, source: string, args: string[]): string {
  execFileSync(ffmpegBinary(), ['-v', 'error', '-y', '-f', 'lavfi', '-i', source, ...args, out]);
  return out;
}

export function sine(n: number, rate: number, freq: number, amp: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Largest |a - b| over the middle of the signals, away from filter edge effects. */
export function maxErrMiddle(a: ArrayLike<number>, b: ArrayLike<number>, margin = 0.1): number {
  const n = Math.min(a.length, b.length);
  let m = 0;
  for (let i = Math.floor(n * margin); i < Math.ceil(n * (1 - margin)); i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
