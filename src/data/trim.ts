/**
 * Leading/trailing silence trimming on 10 ms frames: a frame-RMS decision does not cut into
 * speech at a zero crossing the way a per-sample threshold would.
 * Returns the [start, end) range to keep; start === end when every frame is below the threshold.
 */
export function silenceBounds(
  samples: Float32Array,
  sampleRate: number,
  thresholdDb: number,
): { start: number; end: number } {
  if (!(thresholdDb < 0)) throw new Error(`trim threshold must be a negative dBFS level, got ${thresholdDb}`);
  const frame = Math.max(1, Math.round(sampleRate / 100));
  const limit = Math.pow(10, thresholdDb / 20);
  const limitSq = limit * limit;
  const loud = (f: number) => {
    const a = f * frame;
    const b = Math.min(samples.length, a + frame);
    let s = 0;
    for (let i = a; i < b; i++) s += samples[i] * samples[i];
    return s / (b - a) >= limitSq;
  };
  const frames = Math.ceil(samples.length / frame);
  let first = 0;
  while (first < frames && !loud(first)) first++;
  if (first === frames) return { start: 0, end: 0 };
  let last = frames - 1;
  while (last > first && !loud(last)) last--;
  // One frame of margin each side keeps the onset and decay that sit just under the threshold.
  const start = Math.max(0, (first - 1) * frame);
  const end = Math.min(samples.length, (last + 2) * frame);
  return { start, end };
}

/**
 * silenceBounds over a stream, deciding the same [start, end) without holding the file: push()
 * returns the samples that may be kept, which are all samples from one frame before the first loud
 * frame onwards (so at most two frames are held back). Trailing silence cannot be known until the
 * stream ends, so it is passed on and the caller cuts its output to `end - start` at finish().
 */
export class StreamTrimmer {
  private readonly frame: number;
  private readonly limitSq: number;
  /** the frame being summed; its samples are only kept while no loud frame has been seen */
  private readonly cur: Float32Array;
  private curLen = 0;
  private curSq = 0;
  private prev: Float32Array | null = null;
  private frameIndex = 0;
  private start = -1;
  private lastLoud = -1;
  private total = 0;

  constructor(sampleRate: number, thresholdDb: number) {
    if (!(thresholdDb < 0)) throw new Error(`trim threshold must be a negative dBFS level, got ${thresholdDb}`);
    this.frame = Math.max(1, Math.round(sampleRate / 100));
    const limit = Math.pow(10, thresholdDb / 20);
    this.limitSq = limit * limit;
    this.cur = new Float32Array(this.frame);
  }

  push(chunk: Float32Array): Float32Array {
    this.total += chunk.length;
    if (this.start >= 0) {
      this.scan(chunk, 0);
      return chunk;
    }
    for (let i = 0; i < chunk.length;) {
      const n = Math.min(this.frame - this.curLen, chunk.length - i);
      this.cur.set(chunk.subarray(i, i + n), this.curLen);
      this.add(chunk, i, i + n);
      i += n;
      if (this.curLen < this.frame) break;
      const head = this.endFrame();
      if (head) {
        this.scan(chunk, i);
        return concat([head, chunk.subarray(i)]);
      }
    }
    return new Float32Array(0);
  }

  /** The range to keep, as silenceBounds gives it, and the samples still held back; null when all is silence. */
  finish(): { start: number; end: number; kept: Float32Array } | null {
    const kept = this.curLen > 0 ? this.endFrame() : null;
    if (this.start < 0) return null;
    return {
      start: this.start,
      end: Math.min(this.total, (this.lastLoud + 2) * this.frame),
      kept: kept ?? new Float32Array(0),
    };
  }

  /** Summed in order in double precision, as silenceBounds does, so the two decide alike bit for bit. */
  private add(x: Float32Array, from: number, to: number): void {
    let s = this.curSq;
    for (let i = from; i < to; i++) s += x[i] * x[i];
    this.curSq = s;
    this.curLen += to - from;
  }

  /** Frame loudness only: once speech has started every sample is passed on. */
  private scan(chunk: Float32Array, from: number): void {
    for (let i = from; i < chunk.length;) {
      const n = Math.min(this.frame - this.curLen, chunk.length - i);
      this.add(chunk, i, i + n);
      i += n;
      if (this.curLen === this.frame) this.endFrame();
    }
  }

  /** Closes a frame; returns the held-back samples to pass on when it is the first loud one (or the tail). */
  private endFrame(): Float32Array | null {
    const f = this.frameIndex++;
    const loud = this.curSq / this.curLen >= this.limitSq;
    const len = this.curLen;
    this.curLen = 0;
    this.curSq = 0;
    if (this.start >= 0) {
      if (loud) this.lastLoud = f;
      return null;
    }
    const samples = this.cur.slice(0, len);
    if (!loud) {
      this.prev = samples;
      return null;
    }
    // One frame of margin before the first loud frame, as in silenceBounds.
    this.start = f > 0 ? (f - 1) * this.frame : 0;
    this.lastLoud = f;
    const head = this.prev ? concat([this.prev, samples]) : samples;
    this.prev = null;
    return head;
  }
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
