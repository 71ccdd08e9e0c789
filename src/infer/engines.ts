/**
 * Choosing the engine that runs the inference graphs: onnxruntime (default; graphs exported into
 * the run on demand) or tfjs (the graph builders run eagerly, the reference path).
 */
import type { ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import type { GraphExecutor } from '../engine/executor.js';
import type { EngineInfo } from './executor.js';
import type { GraphOpener } from './evaluate.js';
import { openTfjs } from './evaluate.js';
import type { GenerationGraphs, Generator } from '../models/family.js';
import { ensureGraph } from './onnx-export.js';
import type { SamplingOptions } from '../engine/sampling.js';
import { OrtExecutor, type OrtOptions } from './ort-executor.js';

export type EngineName = 'onnxruntime' | 'tfjs';
export const ENGINES: readonly EngineName[] = ['onnxruntime', 'tfjs'];

export interface EngineOptions extends OrtOptions {
  engine: EngineName;
  /** generation: samples per graph call, drawn in the graph with `sampling` (1 or absent: one per call) */
  blockSize?: number;
  sampling?: SamplingOptions;
  /** told when a graph had to be traced (first use, or new weights) */
  onExport?(file: string, bytes: number): void;
}

/** Opens graphs of a run on onnxruntime, exporting each on first use. */
export function ortOpener(runDir: string, opts: EngineOptions): GraphOpener {
  return async (cfg, spec, params) => {
    const g = ensureGraph(runDir, cfg, params, spec);
    if (g.exported) opts.onExport?.(g.file, g.bytes);
    return OrtExecutor.open(g.file, opts);
  };
}

export function opener(runDir: string, opts: EngineOptions): GraphOpener {
  return opts.engine === 'tfjs' ? openTfjs : ortOpener(runDir, opts);
}

/** A generator of `batch` rows for a run's model on the chosen engine. */
export async function openGenerator(
  runDir: string,
  cfg: ModelConfig,
  params: ParamArrays,
  batch: number,
  opts: EngineOptions,
): Promise<{ gen: Generator; info: EngineInfo }> {
  const family = familyOf(cfg);
  const segmentLength = family.primeLength(cfg);
  let info: EngineInfo | null = null;
  const opened: GraphExecutor[] = [];
  const graphs: Partial<GenerationGraphs> = { segmentLength };
  try {
    for (const kind of family.generationGraphs(cfg)) {
      // A one-sample step is hundreds of tiny kernels: thread hand-offs cost more than they save
      // (measured: ct-small steps 3,400/s on 1 thread, 1,650/s on 2). Priming uses every core.
      const threads = opts.threads ?? (kind === 'segment' ? undefined : 1);
      const r = await opener(runDir, { ...opts, threads })(
        cfg,
        { kind, batch, length: kind === 'segment' ? segmentLength : 1 },
        params,
      );
      opened.push(r.exec);
      info = r.info;
      graphs[kind] = r.exec;
    }
    const K = Math.min(opts.blockSize ?? 1, family.maxBlockSize(cfg));
    if (K > 1 && opts.sampling) {
      const r = await opener(runDir, { ...opts, threads: opts.threads ?? 1 })(
        cfg,
        { kind: 'block', batch, length: K, sampling: opts.sampling },
        params,
      );
      opened.push(r.exec);
      graphs.block = { exec: r.exec, size: K, sampling: opts.sampling };
    }
  } catch (e) {
    for (const x of opened) await x.dispose();
    throw e;
  }
  return { gen: family.generator(cfg, batch, info!.summary, graphs as GenerationGraphs), info: info! };
}
