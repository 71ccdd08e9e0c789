/**
 * Validation during training, on the engine the run trains on. On onnxruntime the segment graph
 * takes the weights as inputs (`p.<name>`), so one session serves every validation of a run: the
 * weights change between validations, and an inference graph with the weights inside would be
 * traced and compiled again each time.
 */
import fs from 'node:fs';
import type { Feeds } from '../engine/executor.js';
import { OnnxTracer, type TraceTensor } from '../engine/onnx-trace.js';
import {
  evaluateCodes,
  type EvalFile,
  type EvalOptions,
  type EvalResult,
  type GraphOpener,
} from '../infer/evaluate.js';
import type { EngineInfo } from '../infer/executor.js';
import { OrtExecutor, type OrtOptions } from '../infer/ort-executor.js';
import { removeOrphanGraphs, tempGraphFile } from '../util/temp-graphs.js';
import type { GraphSpec } from '../models/family.js';
import type { ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';

export interface Validator {
  run(cfg: ModelConfig, params: ParamArrays, files: EvalFile[], opts: EvalOptions): Promise<EvalResult>;
  dispose(): Promise<void>;
}

/** The tfjs path: the evaluation graphs run eagerly on the active backend. */
const tfjsValidator: Validator = {
  run: (cfg, params, files, opts) => evaluateCodes(cfg, params, files, opts),
  dispose: async () => {},
};

async function openWithWeightInputs(
  cfg: ModelConfig,
  spec: GraphSpec,
  params: ParamArrays,
  ort: OrtOptions,
): Promise<{ exec: OrtExecutor; info: EngineInfo }> {
  const t = new OnnxTracer();
  const p = new Map<string, TraceTensor>();
  for (const [name, v] of params) p.set(name, t.input(`p.${name}`, v.data, v.shape));
  for (const [name, out] of Object.entries(familyOf(cfg).graphBuilder(cfg, spec)(t, p))) t.output(name, out);
  removeOrphanGraphs();
  const file = tempGraphFile('valid');
  fs.writeFileSync(file, t.toModel({ graphName: `ctspeech_validation_${spec.kind}` }));
  try {
    return await OrtExecutor.open(file, ort);
  } finally {
    // The session holds the graph once created.
    fs.rmSync(file, { force: true });
  }
}

function onnxruntimeValidator(ort: OrtOptions): Validator {
  const sessions = new Map<string, Promise<{ exec: OrtExecutor; info: EngineInfo }>>();
  return {
    run(cfg, params, files, opts) {
      const weights: Feeds = {};
      for (const [name, v] of params) weights[`p.${name}`] = { data: v.data, shape: v.shape };
      const open: GraphOpener = async (c, spec) => {
        const key = JSON.stringify({ c, spec });
        if (!sessions.has(key)) sessions.set(key, openWithWeightInputs(c, spec, params, ort));
        const { exec, info } = await sessions.get(key)!;
        return { exec: { run: (f) => exec.run({ ...f, ...weights }), dispose: async () => {} }, info };
      };
      return evaluateCodes(cfg, params, files, { ...opts, open });
    },
    async dispose() {
      for (const s of sessions.values()) await (await s.catch(() => null))?.exec.dispose();
      sessions.clear();
    },
  };
}

export function openValidator(engine: 'tfjs' | 'onnxruntime', ort: OrtOptions): Validator {
  return engine === 'onnxruntime' ? onnxruntimeValidator(ort) : tfjsValidator;
}
