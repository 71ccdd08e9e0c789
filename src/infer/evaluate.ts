/**
 * NLL evaluation (docs/architecture.md): every held-out file from empty memory, every sample after
 * the first scored. This is the one entry point `ctspeech eval` calls; the engine behind it
 * (onnxruntime or tfjs) comes in as a graph opener, so the scoring loop is the same for both.
 */
import * as tf from '@tensorflow/tfjs';
import { entropyNats } from '../data/stats.js';
import { ConfigError, parseTransformerConfig } from '../models/config.js';
import type { ParamArrays } from '../models/model-files.js';
import type { ModelConfig } from '../models/registry.js';
import type { EngineInfo, GraphExecutor } from './executor.js';
import { graphBuilder, type GraphSpec } from './graphs.js';
import { SegmentScorer } from './segment-scorer.js';
import { TfExecutor } from './tf-executor.js';
import { NUM_CODES, SILENCE_CODE } from '../util/codes.js';

export interface FileNll {
  path: string;
  /** scored samples: the file's length minus one (the first code has no context to predict it) */
  samples: number;
  /** mean NLL per scored sample, in nats */
  nats: number;
  bits: number;
}

export interface MemoryOverride {
  memory: number;
  compressedMemory: number;
  trainedMemory: number;
  trainedCompressedMemory: number;
}

export interface EvalResult {
  files: FileNll[];
  totalSamples: number;
  /** sample-weighted over files */
  nats: number;
  bits: number;
  /** unigram entropy of the scored codes: the NLL of a model that ignores context */
  unigramNats: number;
  unigramBits: number;
  samplesPerSecond: number;
  /** the engine in words, e.g. "onnxruntime 1.30 (cpu, 2 threads)" */
  backend: string;
  engine: EngineInfo;
  /** segment length the rows advanced by */
  segment: number;
  batch: number;
  memoryOverride?: MemoryOverride;
}

export interface EvalOptions {
  /** files evaluated in parallel rows (default 8) */
  batch?: number;
  /** transformer only: memory lengths at evaluation (may exceed training's; parameters do not depend on them) */
  memory?: number;
  compressedMemory?: number;
  /** WaveNet only: positions per forward pass (carried state makes any length exact); default 4096 */
  wavenetSegment?: number;
  onProgress?(done: number, total: number): void;
  /** builds the segment graph's executor; default tfjs on the active backend */
  open?: GraphOpener;
}

export type GraphOpener = (
  cfg: ModelConfig,
  spec: GraphSpec,
  params: ParamArrays,
) => Promise<{ exec: GraphExecutor; info: EngineInfo }>;

/** The tfjs engine: the graph builder run eagerly on the active backend. */
export const openTfjs: GraphOpener = async (cfg, spec, params) => {
  const backend = tf.getBackend();
  return {
    exec: new TfExecutor(graphBuilder(cfg, spec), params),
    info: { engine: 'tfjs', device: backend, summary: `tfjs (${backend})` },
  };
};

export interface EvalFile {
  path: string;
  codes: Uint8Array;
}

export const WAVENET_EVAL_SEGMENT = 4096;

/** Code fed to padded positions after a file's end; they are never scored. */
const LN2 = Math.log(2);

/**
 * The config evaluation runs: memory overrides applied to a copy (checked as any config is), and
 * no auxiliary loss, which only trains f_c and would cost time at every segment.
 */
export function evalConfig(
  cfg: ModelConfig,
  opts: Pick<EvalOptions, 'memory' | 'compressedMemory'> = {},
): { cfg: ModelConfig; override?: MemoryOverride } {
  const asked = opts.memory !== undefined || opts.compressedMemory !== undefined;
  if (cfg.kind === 'wavenet') {
    if (asked)
      throw new ConfigError(
        'memory overrides apply to transformer models only; a WaveNet carries exactly its receptive field',
      );
    return { cfg };
  }
  const memory = opts.memory ?? cfg.memory;
  const compressedMemory = opts.compressedMemory ?? cfg.compressedMemory;
  if (cfg.compressedMemory === 0 && compressedMemory > 0) {
    throw new ConfigError(
      `compressed memory ${compressedMemory} asked for a Transformer-XL (trained with compressedMemory 0): it has no trained compression network`,
    );
  }
  const out = parseTransformerConfig(
    { ...cfg, memory, compressedMemory, auxLoss: 'none' },
    'evaluation config (after --memory/--compressed-memory)',
  );
  return {
    cfg: out,
    override: asked
      ? { memory, compressedMemory, trainedMemory: cfg.memory, trainedCompressedMemory: cfg.compressedMemory }
      : undefined,
  };
}

/** A row of the batch: which file it is scoring and how many of its inputs it has fed. */
interface Row {
  file: number;
  pos: number;
}

export async function evaluateCodes(
  cfg: ModelConfig,
  params: ParamArrays,
  files: EvalFile[],
  opts: EvalOptions = {},
): Promise<EvalResult> {
  if (files.length === 0) throw new RangeError('nothing to evaluate: no files');
  for (const f of files)
    if (f.codes.length < 2)
      throw new RangeError(`${f.path}: ${f.codes.length} code(s); at least 2 are needed to score one prediction`);
  const batch = Math.max(1, Math.min(opts.batch ?? 8, files.length));
  const { cfg: evalCfg, override } = evalConfig(cfg, opts);
  // Inputs are codes[0 .. L-2]; position t predicts codes[t + 1].
  const lengths = files.map((f) => f.codes.length - 1);
  const longest = Math.max(...lengths);
  // WaveNet: any length is exact; a power of two (>= 256) keeps the number of distinct exported graphs small.
  const n =
    evalCfg.kind === 'wavenet'
      ? Math.min(opts.wavenetSegment ?? WAVENET_EVAL_SEGMENT, Math.max(256, 2 ** Math.ceil(Math.log2(longest))))
      : evalCfg.segment;
  const totalSamples = lengths.reduce((a, l) => a + l, 0);

  // Longest first, so the last rows to finish are short files and idle rows waste little.
  const order = files.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  let nextFile = 0;
  const sums = new Float64Array(files.length);
  const counts = new Float64Array(NUM_CODES);
  for (const f of files) for (let t = 1; t < f.codes.length; t++) counts[f.codes[t]]++;

  const opener = opts.open ?? openTfjs;
  const { exec, info } = await opener(evalCfg, { kind: 'segment', batch, length: n }, params);
  const scorer = new SegmentScorer(evalCfg, batch, n, exec);
  const rows: (Row | null)[] = Array.from({ length: batch }, () => null);
  const tokens = new Int32Array(batch * n);
  const reset = new Uint8Array(batch);
  const start = performance.now();
  let done = 0;
  try {
    for (;;) {
      reset.fill(0);
      for (let b = 0; b < batch; b++) {
        const r = rows[b];
        if (r && r.pos < lengths[r.file]) continue;
        rows[b] = nextFile < order.length ? { file: order[nextFile++], pos: 0 } : null;
        reset[b] = rows[b] ? 1 : 0;
      }
      if (rows.every((r) => r === null)) break;
      const scored: { b: number; file: number; from: number; count: number }[] = [];
      for (let b = 0; b < batch; b++) {
        const r = rows[b];
        tokens.fill(SILENCE_CODE, b * n, (b + 1) * n);
        if (!r) continue;
        const count = Math.min(n, lengths[r.file] - r.pos);
        tokens.set(files[r.file].codes.subarray(r.pos, r.pos + count), b * n);
        scored.push({ b, file: r.file, from: r.pos, count });
        r.pos += count;
      }
      const logp = await scorer.run(tokens, reset);
      for (const s of scored) {
        const codes = files[s.file].codes;
        let sum = 0;
        for (let j = 0; j < s.count; j++) sum -= logp[(s.b * n + j) * NUM_CODES + codes[s.from + j + 1]];
        sums[s.file] += sum;
        done += s.count;
      }
      opts.onProgress?.(done, totalSamples);
    }
  } finally {
    await exec.dispose();
  }
  const seconds = (performance.now() - start) / 1000;
  const out: FileNll[] = files.map((f, i) => {
    const nats = sums[i] / lengths[i];
    return { path: f.path, samples: lengths[i], nats, bits: nats / LN2 };
  });
  let weighted = 0;
  for (let i = 0; i < files.length; i++) weighted += sums[i];
  const nats = weighted / totalSamples;
  const unigramNats = entropyNats(counts);
  return {
    files: out,
    totalSamples,
    nats,
    bits: nats / LN2,
    unigramNats,
    unigramBits: unigramNats / LN2,
    samplesPerSecond: totalSamples / Math.max(seconds, 1e-9),
    backend: info.summary,
    engine: info,
    segment: n,
    batch,
    ...(override ? { memoryOverride: override } : {}),
  };
}
