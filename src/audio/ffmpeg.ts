import fs from 'node:fs';
import { createRequire } from 'node:module';
import ffmpeg from 'fluent-ffmpeg';
import { AudioDecodeError } from './errors.js';

const require = createRequire(import.meta.url);

/** FFMPEG_PATH wins, then the binary shipped in @ffmpeg-installer, then `ffmpeg` on PATH. */
export function ffmpegBinary(): string {
  if (process.env.FFMPEG_PATH) return process.env.FFMPEG_PATH;
  try {
    const installer = require('@ffmpeg-installer/ffmpeg') as { path: string };
    if (installer.path && fs.existsSync(installer.path)) return installer.path;
  } catch {
    // no binary for this platform: fall through to the system one
  }
  return 'ffmpeg';
}

// ffmpeg names layouts, not counts; these are the ones its channel_layout table prints.
const LAYOUT_CHANNELS: Record<string, number> = {
  mono: 1,
  stereo: 2,
  '2.1': 3,
  '3.0': 3,
  '3.0(back)': 3,
  '4.0': 4,
  quad: 4,
  'quad(side)': 4,
  '3.1': 4,
  '5.0': 5,
  '5.0(side)': 5,
  '4.1': 5,
  '5.1': 6,
  '5.1(side)': 6,
  '6.0': 6,
  '6.0(front)': 6,
  hexagonal: 6,
  '6.1': 7,
  '6.1(back)': 7,
  '6.1(front)': 7,
  '7.0': 7,
  '7.0(front)': 7,
  '7.1': 8,
  '7.1(wide)': 8,
  '7.1(wide-side)': 8,
  octagonal: 8,
  hexadecagonal: 16,
  downmix: 2,
  '2 channels': 2,
};

export function parseLayout(name: string): number | null {
  const n = LAYOUT_CHANNELS[name.trim()];
  if (n) return n;
  const m = /^(\d+) channels/.exec(name.trim());
  return m ? Number(m[1]) : null;
}

export interface FfmpegDecoded extends FfmpegStreamInfo {
  samples: Float32Array;
}

export interface FfmpegStreamInfo {
  channels: number;
  sourceRate: number | null;
  /** mono samples delivered at the target rate */
  length: number;
  /** decode errors ffmpeg printed for audio it still delivered (a glitch, not a truncation) */
  warnings: string[];
}

/**
 * Decode any format ffmpeg reads to mono float32 at `sampleRate`, streamed from ffmpeg's stdout
 * (no temp files). ffmpeg resamples with soxr; we downmix ourselves, because ffmpeg's own
 * stereo->mono matrix scales by 1/sqrt(2) rather than averaging the channels.
 */
export async function decodeWithFfmpeg(path: string, sampleRate: number): Promise<FfmpegDecoded> {
  const out = new Growable();
  const info = await streamWithFfmpeg(path, sampleRate, (mono) => out.push(mono));
  return { ...info, samples: out.take() };
}

/**
 * As decodeWithFfmpeg, but hands each block of mono samples to `onChunk` as it arrives, so memory
 * is bounded by a pipe read, not by the file. An error thrown by `onChunk` (a full disk) stops
 * ffmpeg and rejects with that error unchanged.
 */
export function streamWithFfmpeg(
  path: string,
  sampleRate: number,
  onChunk: (mono: Float32Array) => void,
): Promise<FfmpegStreamInfo> {
  return new Promise((resolve, reject) => {
    const stderr: string[] = [];
    let decodeErrors = 0;
    let firstDecodeError = '';
    let channels: number | null = null;
    let sourceRate: number | null = null;
    let declaredSeconds: number | null = null;
    let estimated = false;
    let hasVideo = false;
    let inOutput = false;
    const pending: Buffer[] = [];
    let leftover = Buffer.alloc(0);
    let length = 0;

    const onLine = (line: string) => {
      if (stderr.length < 400) stderr.push(line);
      if (/^Output #0/.test(line)) inOutput = true;
      if (!inOutput) {
        const d = /^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(line);
        if (d) declaredSeconds = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
        if (/Estimating duration from bitrate/.test(line)) estimated = true;
        if (/Stream #\d+:\d+.*: Video: /.test(line)) hasVideo = true;
      }
      // Decoding starts after the output header; earlier lines are the demuxer's probing remarks.
      if (inOutput && isDecodeError(line) && decodeErrors++ === 0) firstDecodeError = line.trim();
      const m = /Stream #\d+:\d+.*Audio: [^,]+, (\d+) Hz, ([^,]+),/.exec(line);
      if (!m) return;
      if (!inOutput && sourceRate === null) sourceRate = Number(m[1]);
      if (inOutput && channels === null) {
        channels = parseLayout(m[2]);
        if (channels === null) fail(`ffmpeg reported an unknown channel layout "${m[2]}"`);
      }
    };

    let failed = false;
    const fail = (reason: string | Error) => {
      if (failed) return;
      failed = true;
      try {
        cmd.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      reject(typeof reason === 'string' ? new AudioDecodeError(path, reason) : reason);
    };

    const consume = (chunk: Buffer) => {
      const ch = channels as number;
      const frameBytes = 4 * ch;
      const buf = leftover.length ? Buffer.concat([leftover, chunk]) : chunk;
      const frames = Math.floor(buf.length / frameBytes);
      const aligned = Buffer.from(buf.subarray(0, frames * frameBytes)); // copy: Float32Array needs 4-byte alignment
      const f = new Float32Array(aligned.buffer, aligned.byteOffset, frames * ch);
      const mono = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < ch; c++) s += f[i * ch + c];
        if (!Number.isFinite(s)) throw new AudioDecodeError(path, `decoded a non-finite sample at ${length + i}`);
        mono[i] = s / ch;
      }
      leftover = Buffer.from(buf.subarray(frames * frameBytes));
      length += frames;
      if (frames) onChunk(mono);
    };
    const consumeAll = (chunk?: Buffer) => {
      try {
        for (const b of pending.splice(0)) consume(b);
        if (chunk) consume(chunk);
      } catch (e) {
        fail(e as Error);
      }
    };

    const cmd = ffmpeg(path)
      .setFfmpegPath(ffmpegBinary())
      .inputOptions(['-nostdin'])
      .outputOptions([
        '-map',
        '0:a:0',
        '-vn',
        '-sn',
        '-dn',
        '-af',
        `aresample=${sampleRate}:resampler=soxr`,
        '-c:a',
        'pcm_f32le',
        '-f',
        'f32le',
      ])
      .on('stderr', onLine)
      .on('error', (err: Error) => {
        // fluent-ffmpeg reports "Output stream closed" when stdout closes more than 20 ms before the
        // process's exit is seen — a race a loaded machine loses. Stdout ending normally means every
        // sample arrived; the checks below (length against the declared duration) still apply.
        if (/Output stream closed/.test(err.message) && outputEnded) return finish();
        fail(summarizeFfmpegError(err.message, stderr));
      })
      .on('end', () => finish());
    let finished = false;
    const finish = () => {
      if (failed || finished) return;
      finished = true;
      if (channels === null) return fail('ffmpeg produced audio without a readable stream header');
      consumeAll();
      if (failed) return;
      if (leftover.length) return fail(`ffmpeg output ended mid-frame (${leftover.length} stray bytes)`);
      if (length === 0) return fail('no audio samples decoded (empty or zero-length audio stream)');
      const short = truncation(length / sampleRate, estimated ? null : declaredSeconds);
      // A video's container duration may outlast its audio track: there shortness alone proves nothing.
      if (short && (!hasVideo || decodeErrors))
        return fail(`truncated or corrupt: ${short}${decodeErrors ? ` (ffmpeg: ${firstDecodeError})` : ''}`);
      const warnings = decodeErrors
        ? [`ffmpeg reported ${decodeErrors} decode error(s), audio kept: ${firstDecodeError}`]
        : [];
      if (short) warnings.push(short);
      resolve({ channels, sourceRate, length, warnings });
    };

    let outputEnded = false;
    const stream = cmd.pipe();
    stream.on('end', () => (outputEnded = true));
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (channels === null) {
        pending.push(chunk);
        return;
      }
      consumeAll(chunk);
    });
    stream.on('error', (err: Error) => fail(err.message));
  });
}

/** ffmpeg's decoders report damage as "[codec @ 0x...] ..." lines or "Error while decoding stream". */
function isDecodeError(line: string): boolean {
  if (/^Error while decoding stream/.test(line)) return true;
  return /^\[[\w:.-]+ @ 0x[0-9a-f]+\] /.test(line) && /error|invalid|failed|corrupt|overread|missing/i.test(line);
}

/**
 * Whether far less audio came out than the file's header declares (a cut-off download or copy):
 * ffmpeg decodes such a file up to the cut and exits 0, sometimes without a single error line.
 */
function truncation(decodedSeconds: number, declaredSeconds: number | null): string | null {
  if (declaredSeconds === null || declaredSeconds <= 0) return null;
  // Encoder delay and padding account for tens of milliseconds; a truncation loses far more.
  if (decodedSeconds >= declaredSeconds * 0.9 || declaredSeconds - decodedSeconds < 0.25) return null;
  return `decoded ${decodedSeconds.toFixed(2)} s of the ${declaredSeconds.toFixed(2)} s its header declares`;
}

function summarizeFfmpegError(message: string, stderr: string[]): string {
  const text = stderr.join('\n');
  if (/ENOENT/.test(message) || /spawn .* ENOENT/.test(message))
    return `ffmpeg not found (${ffmpegBinary()}); set FFMPEG_PATH`;
  if (/matches no streams/.test(text)) return 'no audio stream in file';
  if (/Invalid data found when processing input/.test(text))
    return 'not a readable audio file (ffmpeg: invalid data found when processing input)';
  if (/No such file or directory/.test(text)) return 'no such file';
  if (/Permission denied/.test(text)) return 'permission denied';
  const last = stderr
    .filter((l) => l.trim() && !/^\s+(built|configuration|lib|Copyright)/.test(l))
    .slice(-2)
    .join(' | ');
  // fluent-ffmpeg's own message says how ffmpeg ended (exit code, signal); when stderr ends on
  // progress lines rather than an error, that is the only clue (seen once under heavy CPU load).
  const how = message.split('\n')[0].trim();
  const explained = /error|invalid|failed|cannot|unable/i.test(last);
  return `ffmpeg failed: ${explained || !how ? last || how : `${how}${last ? ` (last output: ${last})` : ''}`}`.slice(
    0,
    500,
  );
}

/** A float32 buffer that grows by doubling: decoded length is unknown until the stream ends. */
export class Growable {
  private buf = new Float32Array(1 << 16);
  private len = 0;
  reserve(n: number): Float32Array {
    if (this.len + n > this.buf.length) {
      let cap = this.buf.length;
      while (cap < this.len + n) cap *= 2;
      const next = new Float32Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    const view = this.buf.subarray(this.len, this.len + n);
    this.len += n;
    return view;
  }
  push(chunk: Float32Array): void {
    this.reserve(chunk.length).set(chunk);
  }
  get length(): number {
    return this.len;
  }
  take(): Float32Array {
    return this.buf.slice(0, this.len);
  }
}
