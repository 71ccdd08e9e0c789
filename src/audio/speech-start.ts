/**
 * Where speech begins in a recording, so a prompt taken "from the start" of a file starts at its
 * first word rather than at the second of line silence many telephony prompts open with.
 */
import { silenceBounds } from '../data/trim.js';

/**
 * Frames quieter than the file's loudest 10 ms frame by more than this are silence. 40 dB sits well
 * above the hiss and mu-law idle noise of the bundled Asterisk prompts (-80 dBFS against speech
 * peaks near -8 dBFS) and well below the weakest onsets (fricatives, about 30 dB under the peak).
 */
export const SPEECH_BELOW_PEAK_DB = 40;

/** The RMS level of the loudest 10 ms frame in dBFS (-Infinity for all-zero audio). */
export function loudestFrameDb(samples: Float32Array, sampleRate: number): number {
  const frame = Math.max(1, Math.round(sampleRate / 100));
  let best = 0;
  for (let a = 0; a < samples.length; a += frame) {
    const b = Math.min(samples.length, a + frame);
    let s = 0;
    for (let i = a; i < b; i++) s += samples[i] * samples[i];
    best = Math.max(best, s / (b - a));
  }
  return 10 * Math.log10(best);
}

/**
 * The sample where speech begins: the first 10 ms frame whose RMS is within SPEECH_BELOW_PEAK_DB of
 * the loudest frame, less one frame of margin for the onset just under the threshold (the rule and
 * margin of `prepare --trim-db`, with the threshold relative to the file's own level, so a quiet
 * recording is judged like a loud one). 0 for audio with no sound at all.
 */
export function speechStart(samples: Float32Array, sampleRate: number, belowPeakDb = SPEECH_BELOW_PEAK_DB): number {
  const peak = loudestFrameDb(samples, sampleRate);
  if (!Number.isFinite(peak)) return 0;
  // A peak at 0 dBFS puts the threshold at -belowPeakDb, still the negative level silenceBounds takes.
  return silenceBounds(samples, sampleRate, Math.min(peak - belowPeakDb, -1e-9)).start;
}
