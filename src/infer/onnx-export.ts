/**
 * Exporting a run's model into ONNX graphs (docs/onnx.md): the graph builders of graphs.ts
 * traced by the ONNX implementation of `Ops`, weights embedded as initializers. Graphs live in
 * <run>/onnx/, named by kind, shape and a hash of the config they were traced for; export.json
 * records the weights they embed, so a retrained run's graphs are found stale and rebuilt.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkOnnxModel } from '../engine/onnx-check.js';
import { OnnxTracer, type TraceTensor } from '../engine/onnx-trace.js';
import { PARAMS_FILE, type ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { GraphSpec } from '../models/family.js';

/** Bumped whenever the graphs' contract (names, shapes, semantics) changes: older exports are rebuilt. */
export const EXPORT_VERSION = 3;
export const ONNX_DIR = 'onnx';
const INDEX = 'export.json';

export interface ExportIndex {
  format: 'ctspeech-onnx';
  version: number;
  /** sha256 of the weights file the graphs embed */
  weights: string;
  graphs: Record<string, { spec: GraphSpec; config: ModelConfig; bytes: number }>;
}

/** Traces one graph with the given weights; returns the serialised ModelProto. */
export function traceGraph(cfg: ModelConfig, params: ParamArrays, spec: GraphSpec): Uint8Array {
  const tracer = new OnnxTracer();
  const p = new Map<string, TraceTensor>();
  for (const [name, v] of params) p.set(name, tracer.param(name, v.data, v.shape));
  const outputs = familyOf(cfg).graphBuilder(cfg, spec)(tracer, p);
  for (const [name, t] of Object.entries(outputs)) tracer.output(name, t);
  return tracer.toModel({
    graphName: `ctspeech_${spec.kind}`,
    docString: `ctspeech ${spec.kind} graph: batch ${spec.batch}, ${spec.length} position(s) per call`,
    metadata: {
      'ctspeech.kind': spec.kind,
      'ctspeech.spec': JSON.stringify(spec),
      'ctspeech.config': JSON.stringify(cfg),
      'ctspeech.export_version': String(EXPORT_VERSION),
    },
  });
}

export function graphFileName(cfg: ModelConfig, spec: GraphSpec): string {
  const hash = crypto
    .createHash('sha256')
    .update(JSON.stringify({ cfg, spec, v: EXPORT_VERSION }))
    .digest('hex')
    .slice(0, 10);
  return `${spec.kind}-b${spec.batch}${spec.kind === 'segment' ? `-n${spec.length}` : ''}-${hash}.onnx`;
}

const hashes = new Map<string, { stamp: string; hash: string }>();

/**
 * sha256 of the run's weights, read once per file version: generation opens four graphs, and a
 * paper-scale weights file is 160 MB. Weights are written atomically (a new inode), so inode, size
 * and mtime say when the file was rewritten.
 */
function weightsHash(runDir: string): string {
  const file = path.resolve(runDir, PARAMS_FILE);
  const st = fs.statSync(file);
  const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
  const known = hashes.get(file);
  if (known?.stamp === stamp) return known.hash;
  const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  hashes.set(file, { stamp, hash });
  return hash;
}

function readIndex(dir: string): ExportIndex | null {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, INDEX), 'utf8')) as ExportIndex;
    return j.format === 'ctspeech-onnx' ? j : null;
  } catch {
    return null;
  }
}

export interface EnsureResult {
  file: string;
  /** true when this call traced it (missing or stale) */
  exported: boolean;
  bytes: number;
}

/**
 * The graph file for (cfg, spec) in runDir/onnx, traced now if missing or if the run's weights
 * changed since the graphs there were written. Files are written atomically; a graph that fails
 * the structural check is never written.
 */
export function ensureGraph(runDir: string, cfg: ModelConfig, params: ParamArrays, spec: GraphSpec): EnsureResult {
  const dir = path.join(runDir, ONNX_DIR);
  fs.mkdirSync(dir, { recursive: true });
  const weights = weightsHash(runDir);
  let index = readIndex(dir);
  if (!index || index.weights !== weights || index.version !== EXPORT_VERSION) {
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.onnx')) fs.rmSync(path.join(dir, f), { force: true });
    index = { format: 'ctspeech-onnx', version: EXPORT_VERSION, weights, graphs: {} };
  }
  const name = graphFileName(cfg, spec);
  const file = path.join(dir, name);
  if (index.graphs[name] && fs.existsSync(file) && fs.statSync(file).size === index.graphs[name].bytes)
    return { file, exported: false, bytes: index.graphs[name].bytes };
  const bytes = traceGraph(cfg, params, spec);
  const problems = checkOnnxModel(bytes);
  if (problems.length)
    throw new Error(`exported ${spec.kind} graph fails the ONNX check: ${problems.slice(0, 5).join('; ')}`);
  writeFileAtomic(file, bytes);
  index.graphs[name] = { spec, config: cfg, bytes: bytes.length };
  writeFileAtomic(path.join(dir, INDEX), JSON.stringify(index, null, 2) + '\n');
  return { file, exported: true, bytes: bytes.length };
}
