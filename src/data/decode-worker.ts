import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { streamAudio } from '../audio/decode.js';
import { AudioDecodeError } from '../audio/errors.js';
import { muLawEncode } from '../audio/mulaw.js';
import { StreamTrimmer } from './trim.js';

export interface DecodeJob {
  id: number;
  source: string;
  sampleRate: number;
  trimDb: number | null;
  /** where codes go once they outgrow `spillAbove` bytes (in the corpus folder, named *.tmp-<pid>) */
  spillFile: string;
  spillAbove?: number;
}

/** Codes up to this size travel back in the message; longer files go through a spill file. */
export const SPILL_ABOVE = 1 << 20;

export type DecodeResult =
  | {
      id: number;
      ok: true;
      length: number;
      /** the codes, or null when they were written to the job's spill file */
      codes: Uint8Array | null;
      sourceRate: number | null;
      channels: number;
      decoder: 'wav' | 'ffmpeg';
      trimmed: { start: number; end: number };
      warnings: string[];
    }
  | { id: number; ok: false; reason: string; io?: { code: string; file: string; message: string } };

/** An error writing our own output, as opposed to reading the source: never a reason to skip a file. */
export class SinkError extends Error {
  constructor(
    readonly code: string,
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Collects a file's codes block by block: in memory while small, then in the spill file, so a
 * two-hour recording costs a block of memory rather than the recording. `truncate` cuts trailing
 * silence that was passed on before the trimmer knew it was trailing.
 */
export class CodeSink {
  private parts: Uint8Array[] = [];
  private fd: number | null = null;
  length = 0;

  constructor(
    private readonly spillFile: string,
    private readonly spillAbove = SPILL_ABOVE,
  ) {}

  write(codes: Uint8Array): void {
    if (!codes.length) return;
    if (this.fd === null && this.length + codes.length > this.spillAbove) {
      this.io(() => {
        this.fd = fs.openSync(this.spillFile, 'w');
      });
      for (const p of this.parts.splice(0)) this.append(p);
    }
    if (this.fd === null) this.parts.push(codes);
    else this.append(codes);
    this.length += codes.length;
  }

  /** The first `n` codes in memory, or null when they are in the spill file (closed, cut to n). */
  finish(n: number): Uint8Array | null {
    if (this.fd === null) {
      const out = new Uint8Array(n);
      let at = 0;
      for (const p of this.parts) {
        if (at >= n) break;
        const take = p.subarray(0, Math.min(p.length, n - at));
        out.set(take, at);
        at += take.length;
      }
      this.parts = [];
      return out;
    }
    const fd = this.fd;
    this.fd = null;
    this.io(() => {
      try {
        fs.ftruncateSync(fd, n);
      } finally {
        fs.closeSync(fd);
      }
    });
    return null;
  }

  discard(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.parts = [];
    fs.rmSync(this.spillFile, { force: true });
  }

  private append(bytes: Uint8Array): void {
    this.io(() => {
      for (let done = 0; done < bytes.length;)
        done += fs.writeSync(this.fd as number, bytes, done, bytes.length - done);
    });
  }

  private io(f: () => void): void {
    try {
      f();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SinkError(err.code ?? 'EIO', this.spillFile, err.message);
    }
  }
}

/** Decode, trim and quantize one file, streaming: everything per file happens off the main thread. */
export async function decodeJob(job: DecodeJob): Promise<DecodeResult> {
  const sink = new CodeSink(job.spillFile, job.spillAbove);
  const trimmer = job.trimDb === null ? null : new StreamTrimmer(job.sampleRate, job.trimDb);
  try {
    const info = await streamAudio(job.source, job.sampleRate, (mono) => {
      const kept = trimmer ? trimmer.push(mono) : mono;
      if (kept.length) sink.write(muLawEncode(kept));
    });
    let keep = sink.length;
    let trimmed = { start: 0, end: 0 };
    if (trimmer) {
      const b = trimmer.finish();
      if (!b) {
        sink.discard();
        return { id: job.id, ok: false, reason: `silent: no 10 ms frame reaches ${job.trimDb} dBFS` };
      }
      if (b.kept.length) sink.write(muLawEncode(b.kept));
      keep = b.end - b.start;
      trimmed = { start: b.start, end: info.length - b.end };
    }
    if (keep < 2) {
      sink.discard();
      return { id: job.id, ok: false, reason: `too short: ${keep} sample(s) at ${job.sampleRate} Hz` };
    }
    const codes = sink.finish(keep);
    return {
      id: job.id,
      ok: true,
      length: keep,
      codes,
      sourceRate: info.sourceRate,
      channels: info.channels,
      decoder: info.decoder,
      trimmed,
      warnings: info.warnings,
    };
  } catch (e) {
    sink.discard();
    if (e instanceof SinkError)
      return { id: job.id, ok: false, reason: e.message, io: { code: e.code, file: e.file, message: e.message } };
    if (e instanceof AudioDecodeError) return { id: job.id, ok: false, reason: e.reason };
    const err = e as Error;
    return { id: job.id, ok: false, reason: err.message };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', async (job: DecodeJob) => {
    const r = await decodeJob(job);
    port.postMessage(r, r.ok && r.codes ? [r.codes.buffer as ArrayBuffer] : []);
  });
}
