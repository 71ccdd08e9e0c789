/**
 * Generation in blocks: a graph that draws K codes per call must give the files the per-sample loop
 * gives for the same seed. Checked twice: the traced sampler against the host sampler on logits
 * built to hit every rule (ties at the top-k floor, -Infinity, top-p boundaries, uniforms at 0 and
 * just below 1, unsampleable rows), and whole generations of every family on onnxruntime (WaveNet,
 * Compressive Transformer, Transformer-XL), block vs one sample per call.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import { checkOnnxModel } from '../src/engine/onnx-check.js';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import { halvesOfDraw, sampleOneHot, type SamplingOptions } from '../src/engine/sampling.js';
import { openGenerator } from '../src/infer/engines.js';
import { generateCodes } from '../src/infer/generate.js';
import { OrtExecutor } from '../src/infer/ort-executor.js';
import type { Generator } from '../src/models/family.js';
import { saveModel } from '../src/models/model-files.js';
import { modelPreset } from '../src/models/registry.js';
import { NUM_CODES } from '../src/util/codes.js';
import { anyParams } from './infer-helpers.js';

await initBackend('cpu');

const SETTINGS: SamplingOptions[] = [
  { temperature: 1 },
  { temperature: 0 },
  { temperature: 1.3 },
  { temperature: 0.7, topK: 20 },
  { temperature: 1, topK: 1 },
  { temperature: 1.1, topP: 0.9 },
  { temperature: 0.9, topK: 50, topP: 0.8 },
  { temperature: 1, topP: 1e-9 },
];

/** Rows of logits that exercise each rule of the sampler, and a draw for each. */
function hardRows(): { logits: Float32Array; draws: Float32Array; rows: number } {
  const rows: Float32Array[] = [];
  const u32: number[] = [];
  const add = (row: Float32Array, draw: number) => (rows.push(row), u32.push(draw));
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (const draw of [0, 1, 2 ** 31, 2 ** 32 - 1, 0x9e3779b9]) {
    add(
      Float32Array.from({ length: NUM_CODES }, () => -5 * rand()),
      draw,
    );
    // Many exact ties: every code one of four values, so the top-k floor is shared.
    add(
      Float32Array.from({ length: NUM_CODES }, (_, c) => [-1, -2, -3, -4][c % 4]),
      draw,
    );
    // Some codes impossible.
    add(
      Float32Array.from({ length: NUM_CODES }, (_, c) => (c % 3 === 0 ? -Infinity : -rand() * 3)),
      draw,
    );
    // One code nearly certain.
    add(
      Float32Array.from({ length: NUM_CODES }, (_, c) => (c === 77 ? 0 : -30 - rand())),
      draw,
    );
    // All equal.
    add(new Float32Array(NUM_CODES).fill(-Math.log(NUM_CODES)), draw);
  }
  // Unsampleable: a NaN, a +Infinity, nothing but -Infinity.
  const nan = new Float32Array(NUM_CODES).fill(-1);
  nan[9] = NaN;
  add(nan, 5);
  const inf = new Float32Array(NUM_CODES).fill(-1);
  inf[200] = Infinity;
  add(inf, 5);
  add(new Float32Array(NUM_CODES).fill(-Infinity), 5);
  const logits = new Float32Array(rows.length * NUM_CODES);
  rows.forEach((r, i) => logits.set(r, i * NUM_CODES));
  const draws = new Float32Array(rows.length * 2);
  u32.forEach((u, i) => halvesOfDraw(u, draws, 2 * i));
  return { logits, draws, rows: rows.length };
}

test('the traced sampler draws the host sampler codes, row for row, whatever the rule', async () => {
  const { logits, draws, rows } = hardRows();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-sample-'));
  for (const [i, opts] of SETTINGS.entries()) {
    const tr = new OnnxTracer();
    const l = tr.input('logits', new Float32Array(rows * NUM_CODES), [rows, NUM_CODES]);
    const d = tr.input('draws', new Float32Array(rows * 2), [rows, 2]);
    tr.output('oneHot', tr.sample(l, d, opts));
    const bytes = tr.toModel({ graphName: 'sample' });
    assert.deepEqual(checkOnnxModel(bytes), [], 'the sampling graph passes the ONNX check');
    const file = path.join(dir, `sample-${i}.onnx`);
    fs.writeFileSync(file, bytes);
    const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
    const out = await exec.run({
      logits: { data: logits, shape: [rows, NUM_CODES] },
      draws: { data: draws, shape: [rows, 2] },
    });
    await exec.dispose();
    const host = sampleOneHot(logits, draws, rows, opts);
    const code = (x: Float32Array, r: number) => x.subarray(r * NUM_CODES, (r + 1) * NUM_CODES).indexOf(1);
    for (let r = 0; r < rows; r++)
      assert.equal(code(out.oneHot, r), code(host, r), `${JSON.stringify(opts)}, row ${r}`);
    // The last three rows cannot be sampled: no code on either path.
    for (let r = rows - 3; r < rows; r++) assert.equal(code(out.oneHot, r), -1, `row ${r} is unsampleable`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A model of `preset` with random weights saved to a temp folder, and `run(K, sampling)`: 662
 * samples (0.0414 s, not a multiple of any block here, so the tail runs one by one) after a 300-code
 * prompt, two rows, seed 11, counting the block calls.
 */
function blockRunner(preset: string) {
  const cfg = modelPreset(preset);
  const params = anyParams(cfg);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-block-'));
  saveModel(dir, cfg, params);
  const prompt = Uint8Array.from({ length: 300 }, (_, i) => 128 + Math.round(40 * Math.sin(i / 7)));
  const run = async (blockSize: number, sampling: SamplingOptions) => {
    const opts = { engine: 'onnxruntime' as const, device: 'cpu' as const, blockSize, sampling };
    const { gen } = await openGenerator(dir, cfg, params, 2, opts);
    let calls = 0;
    const inner = gen.block;
    const counted: Generator = {
      batch: gen.batch,
      engine: gen.engine,
      prime: (c) => gen.prime(c),
      step: (c) => gen.step(c),
      block: inner && { ...inner, run: (prev, draws) => (calls++, inner.run(prev, draws)) },
      dispose: () => gen.dispose(),
    };
    try {
      assert.equal(inner?.size, blockSize > 1 ? blockSize : undefined);
      const r = await generateCodes(counted, { seconds: 0.0414, sampleRate: 16000, prompt, seed: 11, sampling });
      return { codes: r.codes, calls };
    } finally {
      await gen.dispose();
    }
  };
  return { run, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('wavenet-tiny on onnxruntime: blocks of 16 and 5 draw the codes of one sample per call', async () => {
  const { run, done } = blockRunner('wavenet-tiny');
  for (const sampling of SETTINGS) {
    const one = await run(1, sampling);
    for (const K of [16, 5]) {
      const blocks = await run(K, sampling);
      for (let r = 0; r < 2; r++)
        assert.deepEqual(blocks.codes[r], one.codes[r], `${JSON.stringify(sampling)}, block ${K}, row ${r}`);
    }
    // Not a vacuous comparison: the two rows differ unless the sampling is greedy.
    if (sampling.temperature > 0 && sampling.topK !== 1 && sampling.topP !== 1e-9)
      assert.notDeepEqual(one.codes[0], one.codes[1], JSON.stringify(sampling));
  }
  done();
});

for (const preset of ['ct-tiny', 'txl-tiny'])
  test(`${preset} on onnxruntime: blocks within a segment draw the codes of one sample per call`, async () => {
    // The prompt leaves the segment (16) at position 12, so a block of 8 waits for the next segment;
    // the 662 samples cross 41 memory rolls, most of them drawn in blocks.
    const { run, done } = blockRunner(preset);
    for (const sampling of [SETTINGS[0], SETTINGS[6]]) {
      const one = await run(1, sampling);
      assert.equal(one.calls, 0);
      for (const K of [8, 5]) {
        const blocks = await run(K, sampling);
        assert.ok(blocks.calls * K > 500, `${blocks.calls} blocks of ${K}`);
        for (let r = 0; r < 2; r++)
          assert.deepEqual(blocks.codes[r], one.codes[r], `${JSON.stringify(sampling)}, block ${K}, row ${r}`);
      }
      assert.notDeepEqual(one.codes[0], one.codes[1], JSON.stringify(sampling));
    }
    done();
  });

test('a block that could not sample a row stops generation, naming the row and the sample', async () => {
  const logprobs = new Float32Array(NUM_CODES).fill(-Math.log(NUM_CODES));
  const gen: Generator = {
    batch: 1,
    engine: 'test',
    prime: async () => logprobs,
    step: async () => logprobs,
    block: {
      size: 4,
      sampling: { temperature: 1 },
      run: async () => ({ codes: Float32Array.of(3, 4, -1, 5), logprobs }), // the third unsampleable
    },
    dispose: async () => {},
  };
  await assert.rejects(
    generateCodes(gen, { seconds: 0.01, sampleRate: 1000, seed: 1, sampling: { temperature: 1 } }),
    /row 0's log-probabilities before sample 3 are NaN, \+Infinity or all -Infinity/,
  );
  // Other sampling options than the block's: the block is not used at all.
  const r = await generateCodes(gen, { seconds: 0.01, sampleRate: 1000, seed: 1, sampling: { temperature: 0.5 } });
  assert.equal(r.codes[0].length, 10);
});
