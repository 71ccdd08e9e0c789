/**
 * NLL evaluation (docs/architecture.md): every held-out file from empty memory, every sample after
 * the first scored. This is the one entry point `ctspeech eval` calls; the engine behind it
 * (onnxruntime or tfjs) comes in as a graph opener, so the scoring loop is the same for both.
 */
import * as tf from '@tensorflow/tfjs';
import { entropyNats } from '../data/stats.js';
import type { GraphSpec, MemoryOverride } from '../models/family.js';
import type { ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import { SegmentScorer } from '../models/segment-runner.js';
import type { GraphExecutor } from '../engine/executor.js';
import type { EngineInfo } from './executor.js';
import { TfExecutor } from './tf-executor.js';
import { FileRows } from './file-rows.js';
import { NUM_CODES } from '../util/codes.js';

export interface FileNll {
  path: string;
  /** scored samples: the file's length minus one (the first code has no context to predict it) */
  samples: number;
  /** mean NLL per scored sample, in nats */
  nats: number;
  bits: number;
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
  /** graph calls per batch size: the last long files move to smaller batches as rows run out of files */
  calls: { batch: number; calls: number }[];
  memoryOverride?: MemoryOverride;
}

export interface EvalOptions {
  /** files evaluated in parallel rows (default 8) */
  batch?: number;
  /** transformer only: memory lengths at evaluation (may exceed training's; parameters do not depend on them) */
  memory?: number;
  compressedMemory?: number;
  /**
   * positions per segment-graph call, for families that score any length exactly (WaveNet: carried
   * state makes every length exact; default 4096); transformers always use their segment
   */
  length?: number;
  onProgress?(done: number, total: number): void;
  /**
   * Move the rows still reading files to a smaller batch graph once no file is left to start and
   * half the rows or more idle (default true; false keeps every row to the end).
   */
  shrink?: boolean;
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
    exec: new TfExecutor(familyOf(cfg).graphBuilder(cfg, spec), params),
    info: { engine: 'tfjs', device: backend, summary: `tfjs (${backend})` },
  };
};

export interface EvalFile {
  path: string;
  codes: Uint8Array;
}

const LN2 = Math.log(2);

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
  const family = familyOf(cfg);
  const { cfg: evalCfg, override } = family.evalConfig(cfg, opts);
  // Inputs are codes[0 .. L-2]; position t predicts codes[t + 1].
  const lengths = files.map((f) => f.codes.length - 1);
  // Sized to the median file, not the longest: a call longer than most files is mostly padding, and
  // the last long files run on in smaller batches anyway (WaveNet; transformers use their segment).
  const median = [...lengths].sort((a, b) => a - b)[Math.floor(lengths.length / 2)];
  const n = family.scoreLength(evalCfg, median, opts.length);
  const totalSamples = lengths.reduce((a, l) => a + l, 0);
  const sums = new Float64Array(files.length);
  const counts = new Float64Array(NUM_CODES);
  for (const f of files) for (let t = 1; t < f.codes.length; t++) counts[f.codes[t]]++;

  const opener = opts.open ?? openTfjs;
  let { exec, info } = await opener(evalCfg, { kind: 'segment', batch, length: n }, params);
  let scorer = new SegmentScorer(family.hostState(evalCfg, batch), n, exec);
  const calls = [{ batch, calls: 0 }];
  // Longest first, so the last rows to finish are short files and idle rows waste little.
  const order = files.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const rows = new FileRows(
    files.map((f) => f.codes),
    lengths,
    batch,
    n,
    { order },
  );
  const start = performance.now();
  let done = 0;
  try {
    for (let call = rows.next(); call; call = rows.next()) {
      const logp = await scorer.run(call.tokens, call.reset);
      for (const s of call.placed) {
        const codes = files[s.file].codes;
        let sum = 0;
        for (let j = 0; j < s.count; j++) sum -= logp[(s.row * n + j) * NUM_CODES + codes[s.from + j + 1]];
        sums[s.file] += sum;
        done += s.count;
      }
      opts.onProgress?.(done, totalSamples);
      calls[calls.length - 1].calls++;
      // One 73 s file left in an 8-row graph ran at an eighth of its speed: halve the batch instead.
      const live = opts.shrink === false ? null : rows.liveRows();
      if (live && live.length > 0 && live.length <= rows.batch / 2) {
        const smaller = 2 ** Math.ceil(Math.log2(live.length));
        const next = await opener(evalCfg, { kind: 'segment', batch: smaller, length: n }, params);
        const state = family.hostState(evalCfg, smaller);
        live.forEach((from, to) => state.copyRow(scorer.state, from, to));
        rows.shrink(smaller, live);
        await exec.dispose();
        ({ exec, info } = next);
        scorer = new SegmentScorer(state, n, exec);
        calls.push({ batch: smaller, calls: 0 });
      }
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
    calls,
    ...(override ? { memoryOverride: override } : {}),
  };
}
