import { parentPort } from 'node:worker_threads';
import { decodeAudio } from '../audio/decode.js';
import { muLawEncode } from '../audio/mulaw.js';
import { silenceBounds } from './trim.js';

export interface DecodeJob {
  id: number;
  source: string;
  sampleRate: number;
  trimDb: number | null;
}

export type DecodeResult =
  | {
      id: number;
      ok: true;
      codes: Uint8Array;
      sourceRate: number | null;
      channels: number;
      decoder: 'wav' | 'ffmpeg';
      trimmed: { start: number; end: number };
    }
  | { id: number; ok: false; reason: string };

/** Decode, trim and quantize one file: everything per file happens off the main thread. */
export async function decodeJob(job: DecodeJob): Promise<DecodeResult> {
  try {
    const audio = await decodeAudio(job.source, job.sampleRate);
    let { samples } = audio;
    let trimmed = { start: 0, end: 0 };
    if (job.trimDb !== null) {
      const b = silenceBounds(samples, job.sampleRate, job.trimDb);
      if (b.end <= b.start)
        return { id: job.id, ok: false, reason: `silent: no 10 ms frame reaches ${job.trimDb} dBFS` };
      trimmed = { start: b.start, end: samples.length - b.end };
      samples = samples.subarray(b.start, b.end);
    }
    if (samples.length < 2)
      return { id: job.id, ok: false, reason: `too short: ${samples.length} sample(s) at ${job.sampleRate} Hz` };
    const codes = muLawEncode(samples);
    return {
      id: job.id,
      ok: true,
      codes,
      sourceRate: audio.sourceRate,
      channels: audio.channels,
      decoder: audio.decoder,
      trimmed,
    };
  } catch (e) {
    const err = e as Error & { reason?: string };
    return { id: job.id, ok: false, reason: err.reason ?? err.message };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', async (job: DecodeJob) => {
    const r = await decodeJob(job);
    port.postMessage(r, r.ok ? [r.codes.buffer as ArrayBuffer] : []);
  });
}
