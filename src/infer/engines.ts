/**
 * Choosing the engine that runs the inference graphs: onnxruntime (default; graphs exported into
 * the run on demand) or tfjs (the graph builders run eagerly, the reference path).
 */
import type { ParamArrays } from '../models/model-files.js';
import type { ModelConfig } from '../models/registry.js';
import type { EngineInfo, GraphExecutor } from './executor.js';
import type { GraphOpener } from './evaluate.js';
import { openTfjs } from './evaluate.js';
import type { Generator } from './generator-api.js';
import { generationGraphs, type GraphKind } from './graphs.js';
import { ensureGraph } from './onnx-export.js';
import { OrtExecutor, type OrtOptions } from './ort-executor.js';
import { type GenerationGraphs, stepGenerator } from './step-generator.js';

export type EngineName = 'onnxruntime' | 'tfjs';
export const ENGINES: readonly EngineName[] = ['onnxruntime', 'tfjs'];

/** WaveNet primes a prompt in chunks of this many samples; the remainder goes through fast steps. */
export const WAVENET_PRIME_CHUNK = 1024;

export interface EngineOptions extends OrtOptions {
  engine: EngineName;
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
  const segmentLength = cfg.kind === 'wavenet' ? WAVENET_PRIME_CHUNK : cfg.segment;
  let info: EngineInfo | null = null;
  const opened: GraphExecutor[] = [];
  const graphs: Partial<GenerationGraphs> = { segmentLength };
  try {
    for (const kind of generationGraphs(cfg) as GraphKind[]) {
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
  } catch (e) {
    for (const x of opened) await x.dispose();
    throw e;
  }
  return { gen: stepGenerator(cfg, batch, info!.summary, graphs as GenerationGraphs), info: info! };
}
