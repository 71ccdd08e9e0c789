/**
 * The training checkpoint: one safetensors file (plain data, never code, docs/safetensors.md)
 * holding `param/<name>` (weights) and `adam/<key>` (optimizer state, see adam-state.ts), all F32,
 * plus string metadata: format, version, model, config (JSON), state (JSON: step, stream and RNG
 * state, ...), data_bytes, checksum (sha256 of the data buffer) and header_checksum.
 *
 * The data checksum alone would let a flipped byte in the header through: a shape [4, 8] read as
 * [8, 4], or a step count in the state JSON, still parses. header_checksum is the sha256 of the
 * header bytes with its own 64 hex digits read as '0's, so every byte of the file is covered.
 * Writes are atomic (temp, fsync, rename): a crash mid-save leaves the previous checkpoint whole.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import {
  decodeSafetensors,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  type NamedTensor,
  SafetensorsError,
} from '../models/safetensors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const CHECKPOINT_FORMAT = 'ctspeech-checkpoint';
export const CHECKPOINT_VERSION = '1';

export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

export interface CheckpointData {
  /** model kind, e.g. "transformer" or "wavenet" */
  model: string;
  /** the run's model config; must survive JSON round trip */
  config: unknown;
  params: Map<string, F32Tensor>;
  /** exportAdam's map; keys are stored as `adam/<key>` */
  optimizer: Map<string, F32Tensor>;
  /** JSON-able training state */
  state: unknown;
}

export class CheckpointError extends UserError {}

const PARAM = 'param/';
const ADAM = 'adam/';
const ZERO_HEX = '0'.repeat(64);
const HEADER_SUM_KEY = Buffer.from('"header_checksum":"', 'utf8');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function toJson(what: string, v: unknown, file: string): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new CheckpointError(`${file}: ${what} is not JSON-serializable: ${(e as Error).message}`);
  }
  if (s === undefined) throw new CheckpointError(`${file}: ${what} is not JSON-serializable (${typeof v})`);
  return s;
}

/** Byte offset of the header_checksum value in the file; -1 unless it occurs exactly once. */
function headerSumAt(bytes: Uint8Array, headerEnd: number): number {
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, headerEnd);
  const i = header.indexOf(HEADER_SUM_KEY, 8);
  if (i < 0 || header.indexOf(HEADER_SUM_KEY, i + 1) >= 0) return -1;
  const at = i + HEADER_SUM_KEY.length;
  return at + 64 < headerEnd && header[at + 64] === 0x22 /* '"' */ ? at : -1;
}

function headerSum(bytes: Uint8Array, headerEnd: number, at: number): string {
  const copy = Buffer.from(bytes.subarray(8, headerEnd));
  copy.write(ZERO_HEX, at - 8, 'latin1');
  return sha256(copy);
}

export function saveCheckpoint(file: string, c: CheckpointData): void {
  if (typeof c.model !== 'string' || c.model === '')
    throw new CheckpointError(`${file}: model kind must be a non-empty string`);
  const tensors = new Map<string, NamedTensor>();
  for (const [prefix, m] of [
    [PARAM, c.params],
    [ADAM, c.optimizer],
  ] as const) {
    for (const [name, t] of m) {
      if (name === '') throw new CheckpointError(`${file}: empty tensor name under '${prefix}'`);
      if (!(t.data instanceof Float32Array))
        throw new CheckpointError(`${file}: tensor '${prefix}${name}' must be a Float32Array`);
      tensors.set(prefix + name, { dtype: 'F32', shape: t.shape, data: t.data });
    }
  }
  const dataBytes = [...tensors.values()].reduce((a, t) => a + t.data.byteLength, 0);
  const metadata = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    model: c.model,
    config: toJson('config', c.config, file),
    state: toJson('state', c.state, file),
    data_bytes: String(dataBytes),
    checksum: ZERO_HEX,
    header_checksum: ZERO_HEX,
  };
  let bytes: Buffer;
  try {
    bytes = encodeSafetensors(tensors, metadata);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`${file}: ${e.message}`);
    throw e;
  }
  const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
  // Patched in place: a hex digest has the placeholder's length and needs no JSON escaping.
  const sumKey = Buffer.from('"checksum":"', 'utf8');
  const sumAt = bytes.indexOf(sumKey, 8) + sumKey.length;
  bytes.write(sha256(bytes.subarray(headerEnd)), sumAt, 'latin1');
  const hAt = headerSumAt(bytes, headerEnd);
  if (hAt < 0) throw new Error('checkpoint encoder: header_checksum placeholder not found');
  bytes.write(headerSum(bytes, headerEnd, hAt), hAt, 'latin1');
  try {
    writeFileAtomic(file, bytes);
  } catch (e) {
    throw new CheckpointError(
      `${file}: cannot write checkpoint (the previous one, if any, is untouched): ${(e as Error).message}. ` +
        'Free space (or fix the folder) and rerun the same command to resume from the previous checkpoint.',
    );
  }
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Up to `max` paths where two JSON values differ, e.g. "d_model: 64 vs 128". */
function jsonDiff(a: unknown, b: unknown, path = '', out: string[] = [], max = 5): string[] {
  if (out.length >= max) return out;
  const isObj = (x: unknown) => x !== null && typeof x === 'object';
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    for (const k of keys)
      jsonDiff(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
        out,
        max,
      );
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    const show = (x: unknown) => (x === undefined ? '(absent)' : JSON.stringify(x));
    out.push(`${path || '(root)'}: ${show(a)} in the checkpoint, ${show(b)} here`);
  }
  return out;
}

/**
 * `expect.ignore` names top-level config fields left out of the comparison: settings that only
 * shape fresh weights, which a resumed run never draws again.
 */
export function loadCheckpoint(
  file: string,
  expect?: { model?: string; config?: unknown; ignore?: readonly string[] },
): CheckpointData {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${file}: ${msg}`);
  };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return fail(`cannot read checkpoint: ${(e as Error).message}`);
  }
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const n = bytes.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`not a checkpoint: header length ${n} is implausible`);
  const headerEnd = 8 + Number(n);
  if (headerEnd > bytes.length) fail(`truncated: the header needs ${n} bytes but only ${bytes.length - 8} follow`);

  let meta: Record<string, unknown> | undefined;
  try {
    meta = (JSON.parse(bytes.toString('utf8', 8, headerEnd)) as Record<string, Record<string, unknown>>)?.__metadata__;
  } catch (e) {
    fail(`corrupt or not a checkpoint: header is not JSON (${(e as Error).message})`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) {
    fail(
      `not a ctspeech training checkpoint (format ${JSON.stringify(meta?.format ?? null)}, ` +
        `expected "${CHECKPOINT_FORMAT}")`,
    );
  }
  if (meta!.version !== CHECKPOINT_VERSION)
    fail(
      `checkpoint version ${JSON.stringify(meta!.version)} is not supported ` +
        `(this build reads version ${CHECKPOINT_VERSION})`,
    );

  const hAt = headerSumAt(bytes, headerEnd);
  if (hAt < 0 || meta!.header_checksum !== bytes.toString('latin1', hAt, hAt + 64))
    fail('corrupt: header_checksum is missing or malformed');
  if (headerSum(bytes, headerEnd, hAt) !== meta!.header_checksum)
    fail('header checksum mismatch: the header is corrupt');
  const declared = Number(meta!.data_bytes);
  if (!Number.isSafeInteger(declared) || declared < 0)
    fail(`corrupt: data_bytes ${JSON.stringify(meta!.data_bytes)} is not a byte count`);
  const actual = bytes.length - headerEnd;
  if (actual < declared) fail(`truncated: the data buffer has ${actual} of its ${declared} bytes`);
  if (actual > declared) fail(`corrupt: ${actual - declared} bytes beyond the ${declared}-byte data buffer`);
  if (sha256(bytes.subarray(headerEnd)) !== meta!.checksum) fail('checksum mismatch: the tensor data is corrupt');

  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, file);
  } catch (e) {
    return fail(`corrupt: ${(e as Error).message}`);
  }
  const md = decoded.metadata;
  let config: unknown, state: unknown;
  try {
    config = JSON.parse(md.config);
    state = JSON.parse(md.state);
  } catch (e) {
    return fail(`corrupt: config/state metadata is not JSON (${(e as Error).message})`);
  }
  if (expect?.model !== undefined && md.model !== expect.model) {
    fail(
      `this checkpoint belongs to a '${md.model}' run, not to this '${expect.model}' run: use another run directory`,
    );
  }
  if (expect?.config !== undefined) {
    const drop = (c: unknown) =>
      c && typeof c === 'object' && !Array.isArray(c)
        ? Object.fromEntries(Object.entries(c).filter(([k]) => !expect.ignore?.includes(k)))
        : c;
    const want = drop(JSON.parse(toJson('expected config', expect.config, file)));
    const have = drop(config);
    if (JSON.stringify(canonical(have)) !== JSON.stringify(canonical(want))) {
      fail(
        `this checkpoint belongs to a '${md.model}' run with a different config ` +
          `(${jsonDiff(have, want).join('; ')}): use another run directory`,
      );
    }
  }

  const params = new Map<string, F32Tensor>();
  const optimizer = new Map<string, F32Tensor>();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== 'F32') fail(`tensor '${name}' is ${t.dtype}, expected F32`);
    const entry = { shape: t.shape, data: t.data as Float32Array };
    if (name.startsWith(PARAM) && name.length > PARAM.length) params.set(name.slice(PARAM.length), entry);
    else if (name.startsWith(ADAM) && name.length > ADAM.length) optimizer.set(name.slice(ADAM.length), entry);
    else fail(`unexpected tensor '${name}' (expected '${PARAM}<name>' or '${ADAM}<key>')`);
  }
  return { model: md.model, config, params, optimizer, state };
}
