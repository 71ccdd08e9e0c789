import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { encodeSafetensors, saveSafetensors } from '../src/models/safetensors.js';
import {
  CHECKPOINT_FILE,
  CheckpointError,
  type CheckpointData,
  loadCheckpoint,
  saveCheckpoint,
} from '../src/train/checkpoint.js';
import { tempDir } from './helpers.js';

function f32(shape: number[], seed: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(seed * 1000 + i * 0.37) * 3;
  return { shape, data };
}

function sample(step = 1234): CheckpointData {
  return {
    model: 'transformer',
    config: { kind: 'transformer', d_model: 32, layers: 2, heads: 4, nested: { memory: [64, 16], c: 4 } },
    params: new Map([
      ['embed/w', f32([256, 8], 1)],
      ['block0/attn/q', f32([8, 8], 2)],
      ['10', f32([3], 3)], // integer-like name: must keep its place
      ['scale', f32([], 4)],
      ['empty', f32([0, 5], 5)],
    ]),
    optimizer: new Map([
      ['iterations', { shape: [2], data: new Float32Array([0, step]) }],
      ['slot/0000/m', f32([256, 8], 6)],
      ['slot/0000/v', f32([256, 8], 7)],
    ]),
    state: {
      step,
      samplesSeen: step * 4096,
      rng: { s: [1, 2, 3, 4] },
      stream: { kind: 'segment', rows: [{ pos: 7, epoch: 0 }] },
      skipped: 2,
      lr: 3e-4,
    },
  };
}

function assertSame(got: CheckpointData, want: CheckpointData) {
  assert.equal(got.model, want.model);
  assert.deepEqual(got.config, want.config);
  assert.deepEqual(got.state, want.state);
  for (const key of ['params', 'optimizer'] as const) {
    assert.deepEqual([...got[key].keys()], [...want[key].keys()], `${key} order`);
    for (const [name, t] of want[key]) {
      const g = got[key].get(name)!;
      assert.deepEqual(g.shape, t.shape, name);
      assert.ok(g.data instanceof Float32Array);
      assert.deepEqual(
        Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength),
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        name,
      );
    }
  }
}

const err = (file: string, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
  assert.ok(e.message.startsWith(`${file}: `), `message should name the file: ${e.message}`);
  assert.match(e.message, re);
  return true;
};

/** Offset where the data buffer starts. */
const dataStart = (bytes: Buffer) => 8 + Number(bytes.readBigUInt64LE(0));

test('checkpoint: round trip keeps tensors bit-exact, in order, with config and state', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  const c = sample();
  c.params.get('scale')!.data[0] = -0; // compared as bytes below: the sign of zero must survive
  saveCheckpoint(file, c);
  assertSame(loadCheckpoint(file), c);
  assertSame(loadCheckpoint(file, { model: 'transformer', config: JSON.parse(JSON.stringify(c.config)) }), c);
  // Key order in the expected config does not matter.
  const reordered = { nested: { c: 4, memory: [64, 16] }, heads: 4, layers: 2, d_model: 32, kind: 'transformer' };
  assertSame(loadCheckpoint(file, { config: reordered }), c);
  // The metadata names the format and the checksum is the sha256 of the data buffer.
  const bytes = fs.readFileSync(file);
  const header = JSON.parse(bytes.toString('utf8', 8, dataStart(bytes)));
  assert.equal(header.__metadata__.format, 'ctspeech-checkpoint');
  assert.equal(header.__metadata__.version, '1');
  assert.equal(header.__metadata__.model, 'transformer');
  assert.equal(
    header.__metadata__.checksum,
    createHash('sha256')
      .update(bytes.subarray(dataStart(bytes)))
      .digest('hex'),
  );
  // Overwriting replaces the content.
  saveCheckpoint(file, sample(99));
  assert.equal((loadCheckpoint(file).state as { step: number }).step, 99);
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: one flipped byte anywhere is detected', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  saveCheckpoint(file, sample());
  const good = fs.readFileSync(file);
  const start = dataStart(good);
  const cases: [number, RegExp][] = [
    [start, /checksum mismatch: the tensor data is corrupt/],
    [start + 1000, /checksum mismatch/],
    [good.length - 1, /checksum mismatch/],
  ];
  // Header bytes that still parse: a digit of a shape and a digit of the step in the state JSON.
  const text = good.toString('latin1', 0, start);
  cases.push([text.indexOf('[256,8]') + 1, /header checksum mismatch|corrupt/]);
  cases.push([text.indexOf('1234'), /header checksum mismatch/]);
  for (const [at, re] of cases) {
    const bad = Buffer.from(good);
    bad[at] = bad[at] === 0x35 ? 0x36 : 0x35; // stays a digit when it was one
    if (bad[at] === good[at]) bad[at] ^= 1;
    fs.writeFileSync(file, bad);
    assert.throws(() => loadCheckpoint(file), err(file, re), `byte ${at}`);
  }
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: truncated at any length is refused, never partly loaded', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  saveCheckpoint(file, sample());
  const good = fs.readFileSync(file);
  const start = dataStart(good);
  const lengths: [number, RegExp][] = [
    [0, /truncated: 0 bytes/],
    [5, /truncated: 5 bytes/],
    [8, /truncated: the header needs/],
    [start - 10, /truncated: the header needs/],
    [start, /truncated: the data buffer has 0 of its \d+ bytes/],
    [start + 3, /truncated: the data buffer has 3 of/],
    [start + Math.floor((good.length - start) / 2), /truncated/],
    [good.length - 1, /truncated/],
  ];
  for (const [len, re] of lengths) {
    fs.writeFileSync(file, good.subarray(0, len));
    assert.throws(() => loadCheckpoint(file), err(file, re), `length ${len}`);
  }
  fs.writeFileSync(file, Buffer.concat([good, Buffer.from([0])]));
  assert.throws(() => loadCheckpoint(file), err(file, /corrupt: 1 bytes beyond/));
  fs.rmSync(file);
  assert.throws(() => loadCheckpoint(file), err(file, /cannot read checkpoint/));
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: a file that is not a checkpoint, or another version, is refused', () => {
  const dir = tempDir();
  const file = path.join(dir, 'x.safetensors');
  saveSafetensors(file, { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }, { kind: 'transformer' });
  assert.throws(() => loadCheckpoint(file), err(file, /not a ctspeech training checkpoint \(format null/));
  fs.writeFileSync(file, 'this is not a checkpoint at all, just text');
  assert.throws(() => loadCheckpoint(file), err(file, /not a checkpoint: header length \d+ is implausible|truncated/));
  fs.writeFileSync(file, encodeSafetensors(new Map(), { format: 'ctspeech-checkpoint', version: '2' }));
  assert.throws(
    () => loadCheckpoint(file),
    err(file, /checkpoint version "2" is not supported \(this build reads version 1\)/),
  );
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: another model kind or config is refused, saying whose it is', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  const c = sample();
  saveCheckpoint(file, c);
  assert.throws(
    () => loadCheckpoint(file, { model: 'wavenet' }),
    err(file, /belongs to a 'transformer' run, not to this 'wavenet' run/),
  );
  const other = { ...(c.config as object), d_model: 64, nested: { memory: [64, 32], c: 4 } };
  assert.throws(
    () => loadCheckpoint(file, { model: 'transformer', config: other }),
    err(
      file,
      new RegExp(
        /'transformer' run with a different config \(d_model: 32 in the checkpoint, 64 here; /.source +
          /nested\.memory\.1: 16 in the checkpoint, 32 here\)/.source,
      ),
    ),
  );
  const { layers: _dropped, ...fewer } = c.config as Record<string, unknown>;
  assert.throws(
    () => loadCheckpoint(file, { config: fewer }),
    err(file, /layers: 2 in the checkpoint, \(absent\) here/),
  );
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: a crash mid-write leaves the previous checkpoint loadable', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  const old = sample(100);
  saveCheckpoint(file, old);
  // What a killed writer leaves behind: part of a newer checkpoint in a temp file beside it.
  const newer = fs.readFileSync(file);
  saveCheckpoint(path.join(dir, 'scratch'), sample(200));
  const partial = fs.readFileSync(path.join(dir, 'scratch')).subarray(0, 300);
  fs.writeFileSync(`${file}.tmp-424242`, partial);
  fs.writeFileSync(`${file}.tmp-${process.pid}`, partial);
  assertSame(loadCheckpoint(file), old);
  assert.deepEqual(fs.readFileSync(file), newer);
  // The next save succeeds despite the stale temp file of this very process id.
  saveCheckpoint(file, sample(300));
  assert.equal((loadCheckpoint(file).state as { step: number }).step, 300);
  fs.rmSync(dir, { recursive: true });
});

test('checkpoint: bad input to save is refused, and the previous file is untouched', () => {
  const dir = tempDir();
  const file = path.join(dir, CHECKPOINT_FILE);
  saveCheckpoint(file, sample(5));
  const before = fs.readFileSync(file);
  const bad: [Partial<CheckpointData>, RegExp][] = [
    [{ model: '' }, /model kind must be a non-empty string/],
    [
      { params: new Map([['w', { shape: [3], data: new Float32Array(2) }]]) },
      /tensor 'param\/w': shape \[3\] holds 3 elements but data has 2/,
    ],
    [
      { params: new Map([['w', { shape: [2], data: new Float64Array(2) as unknown as Float32Array }]]) },
      /'param\/w' must be a Float32Array/,
    ],
    [{ state: { n: 1n } }, /state is not JSON-serializable/],
    [{ config: undefined }, /config is not JSON-serializable/],
  ];
  for (const [patch, re] of bad) assert.throws(() => saveCheckpoint(file, { ...sample(), ...patch }), err(file, re));
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(fs.readdirSync(dir), [CHECKPOINT_FILE]);
  // An unwritable destination is a CheckpointError too.
  assert.throws(
    () => saveCheckpoint(path.join(dir, 'no', 'such', 'dir', CHECKPOINT_FILE), sample()),
    (e: unknown) => e instanceof CheckpointError && /cannot write checkpoint/.test(e.message),
  );
  fs.rmSync(dir, { recursive: true });
});
