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

export interface FfmpegDecoded {
  samples: Float32Array;
  channels: number;
  sourceRate: number | null;
}

/**
 * Decode any format ffmpeg reads to mono float32 at `sampleRate`, streamed from ffmpeg's stdout
 * (no temp files). ffmpeg resamples with soxr; we downmix ourselves, because ffmpeg's own
 * stereo->mono matrix scales by 1/sqrt(2) rather than averaging the channels.
 */
export function decodeWithFfmpeg(path: string, sampleRate: number): Promise<FfmpegDecoded> {
  return new Promise((resolve, reject) => {
    const stderr: string[] = [];
    let channels: number | null = null;
    let sourceRate: number | null = null;
    let inOutput = false;
    const pending: Buffer[] = [];
    let leftover = Buffer.alloc(0);
    const out = new Growable();

    const onLine = (line: string) => {
      if (stderr.length < 400) stderr.push(line);
      if (/^Output #0/.test(line)) inOutput = true;
      const m = /Stream #\d+:\d+.*Audio: [^,]+, (\d+) Hz, ([^,]+),/.exec(line);
      if (!m) return;
      if (!inOutput && sourceRate === null) sourceRate = Number(m[1]);
      if (inOutput && channels === null) {
        channels = parseLayout(m[2]);
        if (channels === null) fail(`ffmpeg reported an unknown channel layout "${m[2]}"`);
      }
    };

    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      try {
        cmd.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      reject(new AudioDecodeError(path, reason));
    };

    const consume = (chunk: Buffer) => {
      const ch = channels as number;
      const frameBytes = 4 * ch;
      const buf = leftover.length ? Buffer.concat([leftover, chunk]) : chunk;
      const frames = Math.floor(buf.length / frameBytes);
      const aligned = Buffer.from(buf.subarray(0, frames * frameBytes)); // copy: Float32Array needs 4-byte alignment
      const f = new Float32Array(aligned.buffer, aligned.byteOffset, frames * ch);
      const mono = out.reserve(frames);
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < ch; c++) s += f[i * ch + c];
        mono[i] = s / ch;
      }
      leftover = Buffer.from(buf.subarray(frames * frameBytes));
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
        fail(summarizeFfmpegError(err.message, stderr));
      })
      .on('end', () => {
        if (failed) return;
        if (channels === null) return fail('ffmpeg produced audio without a readable stream header');
        for (const b of pending.splice(0)) consume(b);
        if (leftover.length) return fail(`ffmpeg output ended mid-frame (${leftover.length} stray bytes)`);
        const samples = out.take();
        if (samples.length === 0) return fail('no audio samples decoded (empty or zero-length audio stream)');
        for (let i = 0; i < samples.length; i++) {
          if (!Number.isFinite(samples[i])) return fail(`decoded a non-finite sample at ${i}`);
        }
        resolve({ samples, channels, sourceRate });
      });

    const stream = cmd.pipe();
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (channels === null) {
        pending.push(chunk);
        return;
      }
      for (const b of pending.splice(0)) consume(b);
      consume(chunk);
    });
    stream.on('error', (err: Error) => fail(err.message));
  });
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
  return `ffmpeg failed: ${last || message}`.slice(0, 500);
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
