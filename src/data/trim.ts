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
