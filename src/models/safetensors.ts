/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON header, then the tensor bytes. Weights are plain data, never
 * code that runs when loaded (docs/safetensors.md), so the decoder trusts nothing in the file:
 * every length, offset and dtype is checked before a byte is copied.
 */
import fs from 'node:fs';
import os from 'node:os';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

export type Dtype = 'F32' | 'F64' | 'I32' | 'U8';
export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NamedTensor {
  dtype: Dtype;
  /** Row-major; [] is a scalar (one element). */
  shape: number[];
  data: TensorData;
}

export interface Safetensors {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends UserError {}

const DTYPES: Record<Dtype, { size: number; make: (n: number) => TensorData; is: (a: unknown) => boolean }> = {
  F32: { size: 4, make: (n) => new Float32Array(n), is: (a) => a instanceof Float32Array },
  F64: { size: 8, make: (n) => new Float64Array(n), is: (a) => a instanceof Float64Array },
  I32: { size: 4, make: (n) => new Int32Array(n), is: (a) => a instanceof Int32Array },
  U8: { size: 1, make: (n) => new Uint8Array(n), is: (a) => a instanceof Uint8Array },
};
const METADATA_KEY = '__metadata__';
/** The reference implementation's limit too: a larger header is corrupt, not a model. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const LITTLE_ENDIAN = os.endianness() === 'LE';

function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isShape(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => Number.isSafeInteger(v) && v >= 0) && Number.isSafeInteger(elementCount(x));
}

/** The tensor's bytes in little-endian order, as the format stores them. */
function leBytes(data: TensorData): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return view;
  const out = new Uint8Array(view.length);
  const k = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += k) for (let j = 0; j < k; j++) out[i + j] = view[i + k - 1 - j];
  return out;
}

/** Copy into a fresh typed array: the file's offset need not be aligned for the dtype. */
function fromLeBytes(bytes: Uint8Array, dtype: Dtype): TensorData {
  const { size, make } = DTYPES[dtype];
  const out = make(bytes.length / size);
  const dst = new Uint8Array(out.buffer);
  if (LITTLE_ENDIAN || size === 1) dst.set(bytes);
  else for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) dst[i + j] = bytes[i + size - 1 - j];
  return out;
}

/**
 * Tensors are laid out in iteration order. Pass a Map where order matters: a plain object
 * iterates integer-like names ("0", "10") first, whatever order they were written in.
 */
export function encodeSafetensors(
  tensors: Map<string, NamedTensor> | Record<string, NamedTensor>,
  metadata?: Record<string, string>,
): Buffer {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const seen = new Set<string>();
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata '${k}' must be a string, got ${typeof v}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '' || name === METADATA_KEY) throw new SafetensorsError(`invalid tensor name ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new SafetensorsError(`duplicate tensor name '${name}'`);
    seen.add(name);
    if (!isDtype(t.dtype))
      throw new SafetensorsError(
        `tensor '${name}': unsupported dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`,
      );
    if (!DTYPES[t.dtype].is(t.data))
      throw new SafetensorsError(
        `tensor '${name}': dtype ${t.dtype} does not match its data (${t.data?.constructor?.name})`,
      );
    if (!isShape(t.shape))
      throw new SafetensorsError(
        `tensor '${name}': shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
      );
    const n = elementCount(t.shape);
    if (n !== t.data.length)
      throw new SafetensorsError(
        `tensor '${name}': shape [${t.shape.join(', ')}] holds ${n} elements but data has ${t.data.length}`,
      );
    const end = offset + t.data.byteLength;
    // Built by hand rather than as one object: JSON.stringify would move integer-like names first.
    parts.push(
      `${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] })}`,
    );
    offset = end;
  }
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded !== header.length) header = Buffer.concat([header, Buffer.alloc(padded - header.length, 0x20)]);

  const out = Buffer.alloc(8 + header.length + offset);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  let pos = 8 + header.length;
  for (const [, t] of entries) {
    out.set(leBytes(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): Safetensors {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`not a safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8))
    fail(`truncated: header length ${n64} exceeds the ${bytes.length - 8} bytes after the length field`);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  const bufferStart = 8 + n;
  const bufferLength = bytes.length - bufferStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, bufferStart)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');

  // Filled via fromEntries, which defines own properties: a '__proto__' key stays a plain key.
  const metaPairs: [string, string][] = [];
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== 'object' || Array.isArray(info))
        fail(`${METADATA_KEY} must be an object of strings`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${METADATA_KEY} value '${k}' must be a string, got ${JSON.stringify(v)}`);
        metaPairs.push([k, v as string]);
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(`${where}: entry must be an object`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (!isDtype(dtype))
      fail(`${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    if (!isShape(shape))
      fail(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((v) => Number.isSafeInteger(v) && v >= 0)) {
      fail(`${where}: data_offsets must be two non-negative integers, got ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > bufferLength)
      fail(`${where}: data_offsets [${begin}, ${end}] out of range of the ${bufferLength}-byte data buffer`);
    const s = shape as number[];
    const want = elementCount(s) * DTYPES[dtype as Dtype].size;
    if (want !== end - begin)
      fail(
        `${where}: shape [${s.join(', ')}] of ${dtype} needs ${want} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    entries.push({ name, dtype: dtype as Dtype, shape: s, begin, end });
  }

  // The tensors must tile the buffer exactly: no overlap (two tensors aliasing the same bytes)
  // and no gap (bytes nobody accounts for, where a truncated or spliced file would hide).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin < expected)
      fail(
        `tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] ` +
          `overlap tensor '${prev!.name}' [${prev!.begin}, ${prev!.end}]`,
      );
    if (e.begin > expected)
      fail(`bytes [${expected}, ${e.begin}) of the data buffer belong to no tensor (gap before '${e.name}')`);
    expected = e.end;
    prev = e;
  }
  if (expected !== bufferLength)
    fail(`tensors cover ${expected} bytes but the data buffer has ${bufferLength} (trailing bytes or wrong header)`);

  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    const data = fromLeBytes(bytes.subarray(bufferStart + e.begin, bufferStart + e.end), e.dtype);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata: Object.fromEntries(metaPairs) };
}

/** Write atomically, so a crash mid-save leaves the previous file intact. */
export function saveSafetensors(
  path: string,
  tensors: Map<string, NamedTensor> | Record<string, NamedTensor>,
  metadata?: Record<string, string>,
): void {
  let bytes: Buffer;
  try {
    bytes = encodeSafetensors(tensors, metadata);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
  writeFileAtomic(path, bytes);
}

export function loadSafetensors(path: string): Safetensors {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}
