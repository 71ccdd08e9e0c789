import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  SafetensorsError,
  type NamedTensor,
} from '../src/models/safetensors.js';
import { tempDir } from './helpers.js';

/** A file assembled byte by byte: the length field, the header text as given, then the buffer. */
function handFile(header: string, buffer: number[] | Uint8Array): Buffer {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.from(buffer)]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON under test
function headerOf(bytes: Buffer): { text: string; json: Record<string, any> } {
  const n = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  return { text, json: JSON.parse(text) };
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeSafetensors(bytes, 'weights/bad.safetensors'),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
      assert.match(e.message, /^weights\/bad\.safetensors: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const sample: Record<string, NamedTensor> = {
  w: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3.25, 1e-30, -0, Infinity]) },
  codes: { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) },
  // After 5 bytes of U8, this I32 sits at an unaligned file offset.
  steps: { dtype: 'I32', shape: [1, 2, 2], data: Int32Array.from([-1, 2147483647, -2147483648, 258]) },
  scalar: { dtype: 'F64', shape: [], data: Float64Array.from([Math.PI]) },
  empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  d: { dtype: 'F64', shape: [3], data: Float64Array.from([NaN, -1e300, 5e-324]) },
};

test('round trip of several dtypes and shapes, scalar and empty tensors, metadata', () => {
  const meta = { format: 'ctspeech-params', version: '1', config: '{"kind":"transformer"}', note: 'ünïcödé ✓' };
  const bytes = encodeSafetensors(sample, meta);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual([...tensors.keys()], Object.keys(sample));
  for (const [name, t] of Object.entries(sample)) {
    const got = tensors.get(name)!;
    assert.equal(got.dtype, t.dtype, name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.equal(got.data.constructor, t.data.constructor, name);
    assert.deepEqual(got.data, t.data, name); // deepEqual tells -0 from 0 and matches NaN
  }
  assert.deepEqual(metadata, meta);
  // A Map in gives the same bytes as a record in; no metadata means no __metadata__ entry.
  assert.deepEqual(encodeSafetensors(new Map(Object.entries(sample)), meta), bytes);
  assert.equal('__metadata__' in headerOf(encodeSafetensors(sample)).json, false);
  assert.deepEqual(decodeSafetensors(encodeSafetensors({})).tensors.size, 0);
});

test('header: padded with spaces to 8 bytes; offsets contiguous in insertion order', () => {
  for (let extra = 0; extra < 9; extra++) {
    const bytes = encodeSafetensors({
      ['x'.repeat(extra + 1)]: { dtype: 'U8', shape: [1], data: Uint8Array.from([extra]) },
    });
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    assert.equal(bytes.length, 8 + n + 1);
    const { text } = headerOf(bytes);
    assert.match(text, /^\{.*\} *$/);
    assert.ok(text.trimEnd().length > n - 8, 'at most 7 padding spaces');
  }
  // Integer-like names stay in a Map's insertion order (a JS object would move them first).
  const bytes = encodeSafetensors(
    new Map([
      ['b', sample.codes],
      ['10', sample.w],
      ['a', sample.steps],
    ]),
    { k: 'v' },
  );
  const { text, json } = headerOf(bytes);
  assert.ok(
    text.indexOf('"__metadata__"') < text.indexOf('"b"') &&
      text.indexOf('"b"') < text.indexOf('"10"') &&
      text.indexOf('"10"') < text.indexOf('"a"'),
  );
  assert.deepEqual(json.b, { dtype: 'U8', shape: [5], data_offsets: [0, 5] });
  assert.deepEqual(json['10'], { dtype: 'F32', shape: [2, 3], data_offsets: [5, 29] });
  assert.deepEqual(json.a, { dtype: 'I32', shape: [1, 2, 2], data_offsets: [29, 45] });
  const n = Number(bytes.readBigUInt64LE(0));
  // The buffer is the raw little-endian bytes, in header order.
  assert.deepEqual([...bytes.subarray(8 + n, 8 + n + 5)], [0, 1, 127, 128, 255]);
  assert.deepEqual([...bytes.subarray(8 + n + 5, 8 + n + 9)], [0x00, 0x00, 0x80, 0x3f]); // 1.0f
  assert.deepEqual([...bytes.subarray(8 + n + 41, 8 + n + 45)], [0x02, 0x01, 0x00, 0x00]); // 258
  assert.deepEqual([...decodeSafetensors(bytes).tensors.keys()], ['b', '10', 'a']);
});

test('a hand-made file decodes to the expected values', () => {
  // Unpadded header, keys out of buffer order, an unaligned I32, metadata last: all legal.
  const header =
    '{"c":{"dtype":"I32","shape":[2],"data_offsets":[11,19]},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"U8","shape":[3,1],"data_offsets":[8,11]},' +
    '"__metadata__":{"format":"ctspeech-params"}}';
  const buffer = [
    0x00,
    0x00,
    0x80,
    0x3f,
    0x00,
    0x00,
    0x20,
    0xc0, // F32 1.0, -2.5
    1,
    2,
    255, // U8
    0xff,
    0xff,
    0xff,
    0xff,
    0x02,
    0x01,
    0x00,
    0x00, // I32 -1, 258
  ];
  const { tensors, metadata } = decodeSafetensors(handFile(header, buffer));
  assert.deepEqual([...tensors.keys()], ['a', 'b', 'c']);
  assert.deepEqual(tensors.get('a'), { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2.5]) });
  assert.deepEqual(tensors.get('b'), { dtype: 'U8', shape: [3, 1], data: Uint8Array.from([1, 2, 255]) });
  assert.deepEqual(tensors.get('c'), { dtype: 'I32', shape: [2], data: Int32Array.from([-1, 258]) });
  assert.deepEqual(metadata, { format: 'ctspeech-params' });
  // The decoded arrays own their memory: changing the file bytes afterwards changes nothing.
  const file = handFile(header, buffer);
  const got = decodeSafetensors(file).tensors.get('a')!.data;
  file.fill(0);
  assert.deepEqual(got, Float32Array.from([1, -2.5]));
});

const T = (dtype: string, shape: unknown, offs: unknown) => JSON.stringify({ dtype, shape, data_offsets: offs });

test('every kind of corruption is rejected with a message naming the source', () => {
  const good = encodeSafetensors(sample);
  rejects(new Uint8Array(0), /shorter than the 8-byte header length/);
  rejects(good.subarray(0, 7), /shorter than the 8-byte header length/);
  rejects(good.subarray(0, 40), /truncated: header length \d+ exceeds/);
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(0xffff_ffff_ffff_fff0n, 0);
  rejects(huge, /truncated/);
  const big = Buffer.alloc(8 + 101 * 1024 * 1024, 0x20);
  big.writeBigUInt64LE(BigInt(101 * 1024 * 1024), 0);
  rejects(big, /header length \d+ exceeds the \d+-byte limit/);
  rejects(handFile('{"a": nope}', []), /header is not valid UTF-8 JSON/);
  rejects(handFile('', []), /not valid UTF-8 JSON/);
  rejects(handFile('[1,2]', []), /header is not a JSON object/);
  rejects(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0xff, 0x7d]), /UTF-8/); // '{', invalid byte, '}'
  rejects(handFile(`{"a":${T('BF16', [1], [0, 2])}}`, [0, 0]), /tensor 'a': unknown dtype "BF16"/);
  rejects(
    handFile(`{"a":${T('F32', [3], [0, 8])}}`, new Uint8Array(8)),
    /tensor 'a': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
  );
  rejects(handFile(`{"a":${T('F32', [-1], [0, 0])}}`, []), /shape must be an array of non-negative integers/);
  rejects(handFile(`{"a":${T('F32', '2', [0, 8])}}`, new Uint8Array(8)), /shape must be/);
  rejects(handFile(`{"a":${T('F32', [2], [8, 0])}}`, new Uint8Array(8)), /out of range/);
  rejects(
    handFile(`{"a":${T('F32', [2], [4, 12])}}`, new Uint8Array(8)),
    /data_offsets \[4, 12\] out of range of the 8-byte data buffer/,
  );
  rejects(handFile(`{"a":${T('F32', [2], [0])}}`, new Uint8Array(8)), /data_offsets must be two non-negative integers/);
  rejects(handFile(`{"a":${T('F32', [2], [0, 8])},"b":${T('U8', [4], [4, 8])}}`, new Uint8Array(8)), /overlap/);
  rejects(
    handFile(`{"a":${T('F32', [1], [0, 4])},"b":${T('U8', [2], [6, 8])}}`, new Uint8Array(8)),
    /bytes \[4, 6\) .* belong to no tensor/,
  );
  rejects(
    handFile(`{"a":${T('F32', [1], [0, 4])}}`, new Uint8Array(8)),
    /tensors cover 4 bytes but the data buffer has 8/,
  );
  rejects(handFile(`{"a":{"dtype":"U8"}}`, []), /shape must be/);
  rejects(handFile(`{"a":7}`, []), /tensor 'a': entry must be an object/);
  rejects(handFile(`{"__metadata__":{"version":1}}`, []), /__metadata__ value 'version' must be a string, got 1/);
  rejects(handFile(`{"__metadata__":["x"]}`, []), /__metadata__ must be an object/);
  // A duplicated key keeps only the last entry; the first one's bytes then show up as a gap.
  rejects(handFile(`{"a":${T('U8', [2], [0, 2])},"a":${T('U8', [2], [2, 4])}}`, [1, 2, 3, 4]), /belong to no tensor/);
  // The decoder is data only: a header that looks like code stays a string.
  const { metadata } = decodeSafetensors(handFile('{"__metadata__":{"x":"process.exit(1)"}}', []));
  assert.equal(metadata.x, 'process.exit(1)');
  // A '__proto__' key is data, not a prototype change.
  const proto = decodeSafetensors(handFile('{"__metadata__":{"__proto__":"p"}}', [])).metadata;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.entries(proto), [['__proto__', 'p']]);
});

test('encode rejects inconsistent tensors', () => {
  const bad = (t: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => encodeSafetensors({ x: t as unknown as NamedTensor }),
      (e: unknown) => e instanceof SafetensorsError && re.test(e.message),
    );
  bad({ dtype: 'F32', shape: [3], data: new Float32Array(2) }, /shape \[3\] holds 3 elements but data has 2/);
  bad({ dtype: 'F32', shape: [2], data: new Float64Array(2) }, /dtype F32 does not match its data \(Float64Array\)/);
  bad({ dtype: 'F16', shape: [2], data: new Uint8Array(4) }, /unsupported dtype "F16"/);
  bad({ dtype: 'U8', shape: [1.5], data: new Uint8Array(1) }, /shape must be non-negative integers/);
  assert.throws(() => encodeSafetensors({ __metadata__: sample.w }), /invalid tensor name/);
  assert.throws(() => encodeSafetensors({}, { v: 1 as unknown as string }), /metadata 'v' must be a string/);
});

test('save is atomic and load names the file', () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'params.safetensors');
    saveSafetensors(file, sample, { format: 'ctspeech-params' });
    assert.deepEqual(fs.readdirSync(dir), ['params.safetensors']);
    const { tensors, metadata } = loadSafetensors(file);
    assert.deepEqual(tensors.get('steps'), sample.steps);
    assert.deepEqual(metadata, { format: 'ctspeech-params' });
    // A failed save leaves the previous file in place.
    assert.throws(
      () => saveSafetensors(file, { x: { dtype: 'F32', shape: [2], data: new Float32Array(1) } }),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${file}: `),
    );
    assert.deepEqual(loadSafetensors(file).tensors.get('w'), sample.w);
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
    assert.throws(
      () => loadSafetensors(file),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${file}: `),
    );
    const missing = path.join(dir, 'missing.safetensors');
    assert.throws(
      () => loadSafetensors(missing),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${missing}: cannot read`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
