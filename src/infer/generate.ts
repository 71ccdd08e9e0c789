/**
 * The generation loop (docs/onnx.md), written against the Generator interface only, so the
 * same loop drives onnxruntime and the small table models of the tests.
 */
import { muLawDecode, NUM_CODES, SILENCE_CODE } from '../audio/mulaw.js';
import { writeWav } from '../audio/wav.js';
import { Rng } from '../data/rng.js';
import type { Generator } from '../models/family.js';
import { paramCount } from '../models/param-spec.js';
import { type ModelConfig, paramSpecOf } from '../models/registry.js';
import { namingFailedWrite } from '../models/model-files.js';
import { halvesOfDraw, Sampler, type SamplingOptions } from '../engine/sampling.js';

export interface GenerateOptions {
  seconds: number;
  sampleRate: number;
  /** codes fed to every row before sampling; without one, rows start from a single silence code */
  prompt?: Uint8Array;
  seed: number;
  sampling: SamplingOptions;
  /** samplesPerSecond is per row, like the result's */
  onProgress?(done: number, total: number, samplesPerSecond: number): void;
}

export interface GenerateResult {
  /** per row: the prompt, then the continuation */
  codes: Uint8Array[];
  promptLength: number;
  /** samples generated per row: round(seconds * sampleRate) */
  continuationSamples: number;
  /** audio seconds generated per row (continuationSamples / sampleRate) */
  seconds: number;
  /** continuation samples per row per wall second of the sampling loop */
  samplesPerSecond: number;
  /** wall seconds of the sampling loop / audio seconds generated per row; below 1 is faster than real time */
  realTimeFactor: number;
  /** wall seconds spent priming (the prompt, or the single silence code); not in the figures above */
  primeSeconds: number;
}

/**
 * Longest continuation, and longest prompt, one row may have: an hour of audio. Beyond it a
 * sample-by-sample loop at CPU speeds runs for days, and the codes stop fitting in memory.
 */
export const MAX_GENERATE_SECONDS = 3600;
/** All rows' codes (prompt + continuation each) are held in memory until written: at most 1 GiB. */
export const MAX_GENERATED_CODES = 2 ** 30;

/** Why `rows` rows of `promptLength` + `continuation` codes cannot be generated, or null. */
export function generationSizeProblem(rows: number, promptLength: number, continuation: number): string | null {
  const codes = rows * (promptLength + continuation);
  if (codes <= MAX_GENERATED_CODES) return null;
  return (
    `${rows} continuation(s) of ${promptLength.toLocaleString('en-US')} prompt + ` +
    `${continuation.toLocaleString('en-US')} generated samples hold ${codes.toLocaleString('en-US')} codes, ` +
    `more than the ${MAX_GENERATED_CODES.toLocaleString('en-US')} (1 GiB) generation keeps in memory: ` +
    'lower --count, --seconds or --prompt-seconds'
  );
}

/**
 * Samples per block-graph call unless asked: one at --count > 1, where the step is compute-bound and
 * blocks gain nothing (wavenet-cpu at 8 streams: 2,043 vs 1,984 per stream). At --count 1 the best K,
 * measured on 2 cores, falls with the step's size, since an unrolled graph of K steps runs slower per
 * step once it is large: wavenet-cpu (1.2M weights) 3,373-4,437 samples/s at K 1, 4,427-5,156 at 16
 * (before its step had fewer kernels: 3,005 / 3,409, and 2,613 at 32); wavenet-rt (0.09M)
 * 14,393-14,741 at K 1, 17,352-21,755 at 32. A transformer's block is slower than its steps
 * (ct-cpu 2,491-2,559 samples/s at K 1, 2,270 at 4, 1,981 at 8, 1,808 at 16): writing each
 * position into the segment caches inside the graph costs more than the host's round trip saves.
 */
export function defaultBlockSize(cfg: ModelConfig, count: number): number {
  if (count > 1 || cfg.kind === 'transformer') return 1;
  return paramCount(paramSpecOf(cfg)) < 250_000 ? 32 : 16;
}

/** How often onProgress may fire: often enough for a progress bar, rarely enough to cost nothing. */
const PROGRESS_EVERY_MS = 100;

export async function generateCodes(gen: Generator, opts: GenerateOptions): Promise<GenerateResult> {
  const { seconds, sampleRate, seed } = opts;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0)
    throw new RangeError(`--seconds must be a finite number > 0, got ${seconds}`);
  if (seconds > MAX_GENERATE_SECONDS)
    throw new RangeError(
      `--seconds ${seconds} is longer than the ${MAX_GENERATE_SECONDS} s (one hour) a continuation may be`,
    );
  if (!Number.isInteger(sampleRate) || sampleRate < 1)
    throw new RangeError(`sample rate must be a positive integer, got ${sampleRate}`);
  const total = Math.round(seconds * sampleRate);
  if (total < 1) throw new RangeError(`--seconds ${seconds} is less than one sample at ${sampleRate} Hz`);
  const sampler = new Sampler(opts.sampling);
  const rng = new Rng(seed); // validates the seed before any model work
  const batch = gen.batch;
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`generator batch must be a positive integer, got ${batch}`);

  // An empty prompt is no prompt: the model still needs one code of context to predict from.
  const prompt = opts.prompt && opts.prompt.length > 0 ? opts.prompt : undefined;
  const promptLength = prompt?.length ?? 0;
  if (promptLength > MAX_GENERATE_SECONDS * sampleRate)
    throw new RangeError(
      `the prompt lasts ${(promptLength / sampleRate).toFixed(0)} s, longer than the ${MAX_GENERATE_SECONDS} s ` +
        '(one hour) a prompt may be: pass --prompt-seconds',
    );
  const tooBig = generationSizeProblem(batch, promptLength, total);
  if (tooBig) throw new RangeError(tooBig);
  const rows = Array.from({ length: batch }, () => new Uint8Array(promptLength + total));
  if (prompt) for (const row of rows) row.set(prompt);

  const t0 = performance.now();
  let logits = await gen.prime(prompt ?? Uint8Array.of(SILENCE_CODE));
  const t1 = performance.now();
  const step = new Int32Array(batch);
  let lastReport = t1;
  // The block graph draws with the options it was built for; other options sample here, one by one.
  const block = gen.block && sameSampling(gen.block.sampling, opts.sampling) ? gen.block : null;
  const draws = block ? new Float32Array(block.size * batch * 2) : null;
  for (let i = 0; i < total;) {
    if (logits.length !== batch * NUM_CODES)
      throw new Error(`${gen.engine}: expected ${batch} x ${NUM_CODES} logits, got ${logits.length}`);
    // A block when every code it feeds needs a prediction after it; the last ones go one by one.
    if (block && draws && i + block.size < total && (block.fits?.() ?? true)) {
      // The same uniforms, in the same order, as sampleRows would take: one per row per sample.
      if (!sampler.greedy) for (let k = 0; k < draws.length; k += 2) halvesOfDraw(rng.nextU32(), draws, k);
      const out = await block.run(logits, draws);
      for (let j = 0; j < block.size; j++)
        for (let r = 0; r < batch; r++) {
          const code = out.codes[j * batch + r];
          if (code < 0)
            throw new Error(
              `sampler: row ${r}'s log-probabilities before sample ${i + j + 1} are NaN, +Infinity or all -Infinity`,
            );
          rows[r][promptLength + i + j] = code;
        }
      logits = out.logprobs;
      i += block.size;
    } else {
      sampler.sampleRows(logits, batch, rng, step);
      for (let r = 0; r < batch; r++) rows[r][promptLength + i] = step[r];
      // The last code needs no prediction after it: skip the model call.
      if (i + 1 < total) logits = await gen.step(step);
      i++;
    }
    if (opts.onProgress) {
      const now = performance.now();
      if (now - lastReport >= PROGRESS_EVERY_MS || i === total) {
        lastReport = now;
        opts.onProgress(i, total, (i * 1000) / Math.max(now - t1, 1e-3));
      }
    }
  }
  // Clamp to a microsecond so a trivially fast generator still gives finite figures.
  const loopSeconds = Math.max((performance.now() - t1) / 1000, 1e-6);
  const audioSeconds = total / sampleRate;
  return {
    codes: rows,
    promptLength,
    continuationSamples: total,
    seconds: audioSeconds,
    samplesPerSecond: total / loopSeconds,
    realTimeFactor: loopSeconds / audioSeconds,
    primeSeconds: (t1 - t0) / 1000,
  };
}

function sameSampling(a: SamplingOptions, b: SamplingOptions): boolean {
  return a.temperature === b.temperature && a.topK === b.topK && a.topP === b.topP;
}

/** Decode one row of codes and write it as 16-bit mono WAV; writeWav is atomic (temp, fsync, rename). */
export function codesToWav(path: string, codes: Uint8Array, sampleRate: number): void {
  if (!Number.isInteger(sampleRate) || sampleRate < 1)
    throw new RangeError(`sample rate must be a positive integer, got ${sampleRate}`);
  namingFailedWrite(path, () => writeWav(path, muLawDecode(codes), sampleRate));
}
