/**
 * Exporting a run's model into ONNX graphs (docs/onnx.md): the graph builders of graphs.ts
 * traced by the ONNX implementation of `Ops`, weights embedded as initializers. Graphs live in
 * <run>/onnx/, named by kind, shape and a hash of the config they were traced for; export.json
 * records the weights they embed, so a retrained run's graphs are found stale and rebuilt, and each
 * graph's own sha256, so a cached file damaged on disk is never run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkOnnxModel } from '../engine/onnx-check.js';
import { OnnxTracer, type TraceTensor } from '../engine/onnx-trace.js';
import { namingFailedWrite, type ParamArrays } from '../models/model-files.js';
import { familyOf, type ModelConfig } from '../models/registry.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { GraphSpec } from '../models/family.js';

/** Bumped whenever the graphs' contract (names, shapes, semantics) changes: older exports are rebuilt. */
export const EXPORT_VERSION = 5;
export const ONNX_DIR = 'onnx';
const INDEX = 'export.json';

export interface ExportIndex {
  format: 'ctspeech-onnx';
  version: number;
  /** sha256 of the weights file the graphs embed */
  weights: string;
  /** sha256: of the graph file's bytes (absent in exports before it was recorded: those are re-exported) */
  graphs: Record<string, { spec: GraphSpec; config: ModelConfig; bytes: number; sha256?: string }>;
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
  const size = spec.kind === 'segment' ? `-n${spec.length}` : spec.kind === 'block' ? `-k${spec.length}` : '';
  return `${spec.kind}-b${spec.batch}${size}-${hash}.onnx`;
}

function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

const hashes = new WeakMap<ParamArrays, string>();

/**
 * sha256 of the weights the graphs are traced from, computed once per loaded weights object
 * (generation opens four graphs from one). It hashes the arrays in hand, not the file on disk: a
 * trainer may replace the file between loading and tracing, and the cache must be keyed by what
 * the graphs really embed.
 */
function weightsHash(params: ParamArrays): string {
  const known = hashes.get(params);
  if (known) return known;
  const h = crypto.createHash('sha256');
  for (const [name, t] of [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    h.update(`${name}:${t.shape.join('x')};`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const hash = h.digest('hex');
  hashes.set(params, hash);
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
  /** why a cached graph file was not used and was traced again (damaged, or of an older export) */
  replaced?: string;
}

/** Why a cached graph cannot be used as it is, or null when its size and content are the recorded ones. */
function cachedGraphProblem(file: string, entry: ExportIndex['graphs'][string]): string | null {
  const size = fs.statSync(file).size;
  if (size !== entry.bytes) return `it is ${size} bytes, export.json recorded ${entry.bytes}`;
  if (!entry.sha256) return 'export.json records no content hash for it (an older export)';
  if (sha256(fs.readFileSync(file)) !== entry.sha256)
    return 'its content does not match the sha256 in export.json (damaged or modified on disk)';
  return null;
}

/**
 * The graph file for (cfg, spec) in runDir/onnx, traced now if missing, if its bytes are not the
 * ones recorded when it was written (a size check alone misses a flipped byte), or if the run's
 * weights changed since. Files are written atomically; a graph that fails the structural check is
 * never written.
 */
export function ensureGraph(runDir: string, cfg: ModelConfig, params: ParamArrays, spec: GraphSpec): EnsureResult {
  const dir = path.join(runDir, ONNX_DIR);
  fs.mkdirSync(dir, { recursive: true });
  const weights = weightsHash(params);
  let index = readIndex(dir);
  if (!index || index.weights !== weights || index.version !== EXPORT_VERSION) {
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.onnx')) fs.rmSync(path.join(dir, f), { force: true });
    index = { format: 'ctspeech-onnx', version: EXPORT_VERSION, weights, graphs: {} };
  }
  const name = graphFileName(cfg, spec);
  const file = path.join(dir, name);
  const cached = index.graphs[name];
  let replaced: string | undefined;
  if (cached && fs.existsSync(file)) {
    const problem = cachedGraphProblem(file, cached);
    if (!problem) return { file, exported: false, bytes: cached.bytes };
    replaced = problem;
    console.error(`${file}: ${problem}; exporting it again`);
  }
  const bytes = traceGraph(cfg, params, spec);
  const problems = checkOnnxModel(bytes);
  if (problems.length)
    throw new Error(`exported ${spec.kind} graph fails the ONNX check: ${problems.slice(0, 5).join('; ')}`);
  namingFailedWrite(file, () => writeFileAtomic(file, bytes));
  index.graphs[name] = { spec, config: cfg, bytes: bytes.length, sha256: sha256(bytes) };
  const indexFile = path.join(dir, INDEX);
  namingFailedWrite(indexFile, () => writeFileAtomic(indexFile, JSON.stringify(index, null, 2) + '\n'));
  return { file, exported: true, bytes: bytes.length, ...(replaced ? { replaced } : {}) };
}
