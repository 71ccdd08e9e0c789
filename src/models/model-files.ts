import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { shapeSize } from './param-spec.js';
import { type ModelConfig, paramSpecOf, parseModelConfig } from './registry.js';
import { loadSafetensors, type NamedTensor, saveSafetensors } from './safetensors.js';
import { UserError } from '../util/errors.js';

export const PARAMS_FILE = 'weights.safetensors';
export const CONFIG_FILE = 'config.json';
export const PARAMS_FORMAT = 'ctspeech-params';
export const PARAMS_VERSION = '1';

export type ParamArrays = Map<string, { shape: number[]; data: Float32Array }>;

export class ModelFileError extends UserError {}

/**
 * Save parameters as `weights.safetensors` (F32, names of docs/safetensors.md) with the config as
 * `config.json` beside it and inside the safetensors metadata, so either file alone identifies
 * the model. Both writes are atomic.
 */
export function saveModel(dir: string, cfg: ModelConfig, params: ParamArrays): void {
  checkAgainstSpec(cfg, params, dir);
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, NamedTensor>();
  for (const s of paramSpecOf(cfg)) {
    const p = params.get(s.name)!;
    tensors.set(s.name, { dtype: 'F32', shape: [...p.shape], data: p.data });
  }
  const config = JSON.stringify(cfg);
  const weights = path.join(dir, PARAMS_FILE);
  namingFailedWrite(weights, () =>
    saveSafetensors(weights, tensors, { format: PARAMS_FORMAT, version: PARAMS_VERSION, config }),
  );
  const cfgFile = path.join(dir, CONFIG_FILE);
  namingFailedWrite(cfgFile, () => writeFileAtomic(cfgFile, JSON.stringify(cfg, null, 2) + '\n'));
}

/**
 * Runs a write and, when it fails, names the file on the error: a write to an open descriptor
 * reports ENOSPC without a path, and "disk full" should say which output did not fit.
 */
export function namingFailedWrite<T>(file: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    if (e && typeof e === 'object' && (e as NodeJS.ErrnoException).path === undefined)
      (e as NodeJS.ErrnoException).path = file;
    throw e;
  }
}

/** Load and check a saved model: every parameter the config needs, with its shape, and nothing else. */
export function loadModel(dir: string): { cfg: ModelConfig; params: ParamArrays } {
  const cfgPath = path.join(dir, CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new ModelFileError(
      `${cfgPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (e as Error).message}`,
    );
  }
  const cfg = parseModelConfig(raw, cfgPath);
  const file = path.join(dir, PARAMS_FILE);
  const st = loadSafetensors(file);
  if (st.metadata.format !== PARAMS_FORMAT)
    throw new ModelFileError(
      `${file}: not a ctspeech parameter file (metadata format ${JSON.stringify(st.metadata.format)})`,
    );
  if (st.metadata.version !== PARAMS_VERSION)
    throw new ModelFileError(
      `${file}: parameter format version ${st.metadata.version}, this ctspeech reads ${PARAMS_VERSION}`,
    );
  if (st.metadata.config && st.metadata.config !== JSON.stringify(cfg)) {
    let inner: ModelConfig;
    try {
      inner = parseModelConfig(JSON.parse(st.metadata.config), `${file} metadata`);
    } catch (e) {
      throw new ModelFileError(`${file}: its embedded config is unreadable: ${(e as Error).message}`);
    }
    if (JSON.stringify(inner) !== JSON.stringify(cfg))
      throw new ModelFileError(
        `${cfgPath} does not match the config inside ${file}: the two files come from different models`,
      );
  }
  const params: ParamArrays = new Map();
  for (const [name, t] of st.tensors) {
    if (t.dtype !== 'F32') throw new ModelFileError(`${file}: ${name} is ${t.dtype}, expected F32`);
    params.set(name, { shape: t.shape, data: t.data as Float32Array });
  }
  checkAgainstSpec(cfg, params, file);
  checkFinite(params, file);
  return { cfg, params };
}

/**
 * NaN or infinite weights make every NLL NaN and every sample garbage; refuse them at load, naming
 * the tensors, rather than let eval print NaN or generate fail deep inside sampling.
 */
function checkFinite(params: ParamArrays, file: string): void {
  const bad: string[] = [];
  let tensors = 0;
  for (const [name, p] of params) {
    let n = 0;
    for (let i = 0; i < p.data.length; i++) if (!Number.isFinite(p.data[i])) n++;
    if (n === 0) continue;
    tensors++;
    if (bad.length < 6) bad.push(`${name} (${n.toLocaleString('en-US')} of ${p.data.length.toLocaleString('en-US')})`);
  }
  if (tensors)
    throw new ModelFileError(
      `${file}: non-finite weights (NaN or infinity) in ${tensors} tensor(s): ${bad.join(', ')}` +
        `${tensors > bad.length ? `, and ${tensors - bad.length} more` : ''}; ` +
        'the model is unusable (did training diverge?): retrain it or restore good weights',
    );
}

function checkAgainstSpec(cfg: ModelConfig, params: ParamArrays, where: string): void {
  const specs = paramSpecOf(cfg);
  const problems: string[] = [];
  for (const s of specs) {
    const p = params.get(s.name);
    if (!p) problems.push(`missing ${s.name}`);
    else if (p.shape.join('x') !== s.shape.join('x'))
      problems.push(`${s.name} has shape [${p.shape}], the config needs [${s.shape}]`);
    else if (p.data.length !== shapeSize(s.shape))
      problems.push(`${s.name} holds ${p.data.length} values for shape [${s.shape}]`);
  }
  const known = new Set(specs.map((s) => s.name));
  for (const name of params.keys()) if (!known.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length)
    throw new ModelFileError(
      `${where}: parameters do not fit the config: ${problems.slice(0, 6).join('; ')}` +
        `${problems.length > 6 ? `; and ${problems.length - 6} more` : ''}`,
    );
}

/** A trained run's model, with errors that say what is missing from the run folder. */
export function loadRun(run: string): ReturnType<typeof loadModel> {
  let st: fs.Stats;
  try {
    st = fs.statSync(run);
  } catch {
    throw new ModelFileError(`run directory ${run} does not exist`);
  }
  if (!st.isDirectory()) throw new ModelFileError(`--run ${run} is not a folder`);
  for (const f of [CONFIG_FILE, PARAMS_FILE]) {
    if (!fs.existsSync(path.join(run, f)))
      throw new ModelFileError(
        `${path.join(run, f)} is missing: ${run} holds no trained model (has training saved its weights?)`,
      );
  }
  return loadModel(run);
}
