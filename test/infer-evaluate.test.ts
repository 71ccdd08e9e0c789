import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { decodeAudio } from '../src/audio/decode.js';
import { writeWav } from '../src/audio/wav.js';
import { filesOf, readManifest } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { initBackend } from '../src/engine/backend.js';
import { TfOps, type TfTensor } from '../src/engine/tfjs-ops.js';
import { ortOpener } from '../src/infer/engines.js';
import { evaluateCodes, type EvalFile, type EvalOptions } from '../src/infer/evaluate.js';
import { ConfigError, parseTransformerConfig } from '../src/models/config.js';
import { type ParamArrays, saveModel } from '../src/models/model-files.js';
import { initParams } from '../src/models/param-spec.js';
import { familyOf, type ModelConfig, modelPreset, paramSpecOf } from '../src/models/registry.js';
import { CLI, REPO, SAMPLES, tempDir } from './helpers.js';

const ops = new TfOps();

before(async () => {
  await initBackend('wasm');
});

/** std 0.2 rather than training's 0.02, so predictions are far from uniform. */
function weights(cfg: ModelConfig, seed = 3): ParamArrays {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, seed, 0.2);
  return new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }]));
}

function pseudoCodes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  // A random walk: speech-like in that neighbours are close, so context matters.
  let x = 128;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x = Math.max(0, Math.min(255, x + ((s >>> 24) % 9) - 4));
    return x;
  });
}

/**
 * The NLL of one file computed independently: one row, fresh state, segment by segment, log-softmax
 * in float64 on the host.
 */
function referenceNll(cfg: ModelConfig, arrays: ParamArrays, codes: Uint8Array, n: number): number {
  const model = familyOf(cfg).sequenceModel<TfTensor>(cfg);
  const p = new Map([...arrays].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  let state = model.initialState(ops, 1);
  const L = codes.length - 1;
  let sum = 0;
  for (let s = 0; s < L; s += n) {
    const count = Math.min(n, L - s);
    const tok = new Int32Array(n).fill(128);
    tok.set(codes.subarray(s, s + count));
    const out = model.forward(ops, p, tok, null, state);
    const logits = ops.read(out.logits);
    for (let j = 0; j < count; j++) {
      const row = logits.subarray(j * 256, (j + 1) * 256);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let z = 0;
      for (const v of row) z += Math.exp(v - max);
      sum -= row[codes[s + j + 1]] - max - Math.log(z);
    }
    state = out.state;
  }
  return sum / L;
}

function files(lengths: number[]): EvalFile[] {
  return lengths.map((l, i) => ({ path: `f${i}-${l}`, codes: pseudoCodes(l, 11 + i) }));
}

function checkTotals(r: Awaited<ReturnType<typeof evaluateCodes>>, input: EvalFile[]): void {
  let w = 0;
  let s = 0;
  r.files.forEach((f, i) => {
    assert.equal(f.path, input[i].path, 'results keep input order');
    assert.equal(f.samples, input[i].codes.length - 1);
    assert.ok(Math.abs(f.bits - f.nats / Math.LN2) < 1e-12);
    w += f.nats * f.samples;
    s += f.samples;
  });
  assert.equal(r.totalSamples, s);
  assert.ok(Math.abs(r.nats - w / s) < 1e-9);
  assert.ok(Math.abs(r.bits - r.nats / Math.LN2) < 1e-12);
  assert.ok(Math.abs(r.unigramBits - r.unigramNats / Math.LN2) < 1e-12);
  assert.ok(r.unigramNats > 0 && r.samplesPerSecond > 0);
}

// Segment 16: one file shorter than a segment, one exactly two segments, others ragged; three rows
// so a row that finishes picks up the next file with a reset while the others carry memory.
const LENGTHS = [10, 70, 33, 120, 2];

for (const name of ['ct-tiny', 'txl-tiny']) {
  test(`${name}: batched per-file NLL equals single-file reference runs`, async () => {
    const cfg = modelPreset(name);
    const w = weights(cfg);
    const fl = files(LENGTHS);
    const r = await evaluateCodes(cfg, w, fl, { batch: 3 });
    assert.equal(r.segment, 16);
    for (let i = 0; i < fl.length; i++) {
      const ref = referenceNll(cfg, w, fl[i].codes, 16);
      assert.ok(Math.abs(r.files[i].nats - ref) < 1e-4, `${fl[i].path}: ${r.files[i].nats} vs reference ${ref}`);
    }
    checkTotals(r, fl);
    // Not uniform: the weights make real predictions.
    assert.ok(Math.abs(r.nats - Math.log(256)) > 0.05, `nats ${r.nats}`);
    assert.equal(r.memoryOverride, undefined);
  });
}

test('wavenet-tiny: batched NLL with short segments equals reference runs with other segments', async () => {
  const cfg = modelPreset('wavenet-tiny');
  const w = weights(cfg);
  const fl = files([30, 151, 100, 97, 5]);
  const r = await evaluateCodes(cfg, w, fl, { batch: 2, length: 24 });
  assert.equal(r.segment, 24);
  for (let i = 0; i < fl.length; i++) {
    const ref = referenceNll(cfg, w, fl[i].codes, 64);
    assert.ok(Math.abs(r.files[i].nats - ref) < 1e-4, `${fl[i].path}: ${r.files[i].nats} vs reference ${ref}`);
  }
  checkTotals(r, fl);
  // The default segment (4096, capped at the longest file rounded up to a power of two >= 256) scores the same.
  const whole = await evaluateCodes(cfg, w, fl);
  assert.equal(whole.segment, 256);
  for (let i = 0; i < fl.length; i++) assert.ok(Math.abs(whole.files[i].nats - r.files[i].nats) < 1e-4);
});

// Eight short files and one ten times longer: once the short ones are done, the long file's row moves
// to a batch of 1 with its state, and scores exactly as in a single-file reference run.
const ONE_LONG = [400, 40, 41, 39, 40, 38, 42, 40, 37];

for (const [name, engine] of [
  ['ct-tiny', 'tfjs'],
  ['txl-tiny', 'tfjs'],
  ['wavenet-tiny', 'tfjs'],
  ['ct-tiny', 'onnxruntime'],
  ['wavenet-tiny', 'onnxruntime'],
] as const) {
  test(`${name} on ${engine}: the last long file moves to a smaller batch with its state, same NLL`, async () => {
    const cfg = modelPreset(name);
    const w = weights(cfg);
    const fl = files(ONE_LONG);
    const length = cfg.kind === 'wavenet' ? 24 : undefined;
    let open: EvalOptions['open'];
    if (engine === 'onnxruntime') {
      const run = tempDir();
      saveModel(run, cfg, w);
      open = ortOpener(run, { engine, device: 'cpu', threads: 1 });
    }
    const r = await evaluateCodes(cfg, w, fl, { batch: 4, length, open });
    const kept = await evaluateCodes(cfg, w, fl, { batch: 4, length, open, shrink: false });
    assert.equal(r.calls[0].batch, 4);
    assert.equal(r.calls.at(-1)!.batch, 1, `the long file ends alone: ${JSON.stringify(r.calls)}`);
    assert.equal(kept.calls.length, 1);
    const segment = r.segment;
    for (let i = 0; i < fl.length; i++) {
      const ref = referenceNll(cfg, w, fl[i].codes, cfg.kind === 'wavenet' ? 64 : segment);
      assert.ok(Math.abs(r.files[i].nats - ref) < 1e-4, `${fl[i].path}: ${r.files[i].nats} vs reference ${ref}`);
      assert.ok(Math.abs(r.files[i].nats - kept.files[i].nats) < 1e-6, `${fl[i].path}: as without moving rows`);
    }
    checkTotals(r, fl);
  });
}

test('memory override: doubled CT memory runs, changes long files, leaves a one-segment file alone', async () => {
  const cfg = modelPreset('ct-tiny');
  if (cfg.kind !== 'transformer') throw new Error('unreachable');
  const w = weights(cfg);
  const fl = files([300, 12]);
  const base = await evaluateCodes(cfg, w, fl, { batch: 2 });
  const big = await evaluateCodes(cfg, w, fl, {
    batch: 2,
    memory: 2 * cfg.memory,
    compressedMemory: 2 * cfg.compressedMemory,
  });
  assert.deepEqual(big.memoryOverride, {
    memory: 32,
    compressedMemory: 16,
    trainedMemory: 16,
    trainedCompressedMemory: 8,
  });
  assert.ok(
    Math.abs(big.files[0].nats - base.files[0].nats) > 1e-4,
    `long file: ${big.files[0].nats} vs ${base.files[0].nats}`,
  );
  assert.ok(
    Math.abs(big.files[1].nats - base.files[1].nats) < 1e-5,
    `short file: ${big.files[1].nats} vs ${base.files[1].nats}`,
  );
  // And the overridden model is exactly the model with those lengths.
  const ref = referenceNll(parseTransformerConfig({ ...cfg, memory: 32, compressedMemory: 16 }), w, fl[0].codes, 16);
  assert.ok(Math.abs(big.files[0].nats - ref) < 1e-4);
  // Overrides that cannot work are config errors, not shape errors mid-run.
  await assert.rejects(
    evaluateCodes(modelPreset('txl-tiny'), weights(modelPreset('txl-tiny')), fl, { compressedMemory: 8 }),
    ConfigError,
  );
  await assert.rejects(evaluateCodes(cfg, w, fl, { memory: 0 }), ConfigError);
  await assert.rejects(
    evaluateCodes(modelPreset('wavenet-tiny'), weights(modelPreset('wavenet-tiny')), fl, { memory: 8 }),
    ConfigError,
  );
});

test('evaluation leaks no tensors', async () => {
  const cfg = modelPreset('ct-tiny');
  const w = weights(cfg);
  const before = tf.memory().numTensors;
  await evaluateCodes(cfg, w, files([40, 17, 65]), { batch: 2 });
  assert.equal(tf.memory().numTensors, before);
});

// ---- the command ----

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Short WAVs cut from the bundled speech, so each command stays near a second. */
async function shortAudio(dir: string): Promise<string> {
  const cuts: [string, string, number][] = [
    ['test', 'demo-moreinfo.wav', 0.25],
    ['test', 'vm-forwardoptions.wav', 0.15],
    ['valid', 'demo-abouttotry.wav', 0.1],
  ];
  for (const [split, name, seconds] of cuts) {
    const a = await decodeAudio(path.join(SAMPLES, split, name), 16000);
    fs.mkdirSync(path.join(dir, split), { recursive: true });
    writeWav(path.join(dir, split, name), a.samples.subarray(8000, 8000 + Math.round(seconds * 16000)), 16000);
  }
  return dir;
}

test('ctspeech eval: run corpus, --data audio, table output, errors', async () => {
  const root = tempDir();
  const run = path.join(root, 'run');
  // ct-tiny's widths with long segments: tfjs's per-op cost is paid per segment, so this scores a
  // quarter-second file in a fraction of a second, where segment 16 would take seconds.
  const cfg = parseTransformerConfig({ ...modelPreset('ct-tiny'), segment: 128, memory: 128, compressedMemory: 32 });
  const w = weights(cfg);
  saveModel(run, cfg, w);
  const audio = await shortAudio(path.join(root, 'audio'));
  await prepareCorpus({ inputs: [audio], out: path.join(run, 'corpus'), workers: 1 });

  const r = cli(['eval', '--run', run, '--json', '--split', 'test', '--engine', 'tfjs', '--backend', 'wasm']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const m = readManifest(path.join(run, 'corpus'));
  const entries = filesOf(m, 'test');
  assert.equal(j.files.length, 2);
  assert.deepEqual(
    j.files.map((f: { samples: number }) => f.samples),
    entries.map((e) => e.length - 1),
  );
  assert.match(j.backend, /wasm/);
  // The command scores what evaluateCodes scores on the same codes.
  const bin = fs.readFileSync(path.join(run, 'corpus', m.binaries.test));
  const direct = await evaluateCodes(
    cfg,
    w,
    entries.map((e) => ({ path: e.path, codes: bin.subarray(e.offset, e.offset + e.length) })),
  );
  assert.ok(Math.abs(j.nats - direct.nats) < 1e-6, `${j.nats} vs ${direct.nats}`);
  assert.ok(j.unigramBits > 1 && j.unigramBits < 8);

  const table = cli(['eval', '--run', run, '--split', 'valid', '--memory', '256', '--backend', 'wasm']);
  assert.equal(table.code, 0, table.err);
  for (const s of [
    /onnxruntime .*\(cpu, \d threads?\)/,
    /exported .*segment-b1-n128-.*\.onnx/,
    /NLL \(bits\)/,
    /^total\s+\d+/m,
    /unigram entropy/,
    /samples\/s/,
    /memory at evaluation: 256/,
  ])
    assert.match(table.out, s);

  fs.writeFileSync(path.join(audio, 'test', 'broken.wav'), 'not audio at all');
  const data = cli(['eval', '--run', run, '--data', path.join(audio, 'test'), '--json', '--backend', 'wasm']);
  assert.equal(data.code, 0, data.err);
  const dj = JSON.parse(data.out);
  assert.equal(dj.files.length, 2);
  assert.match(data.err, /skipped .*broken\.wav/);
  // The two engines score the same files alike.
  const viaTf = JSON.parse(
    cli(['eval', '--run', run, '--data', path.join(audio, 'test'), '--json', '--engine', 'tfjs', '--backend', 'wasm'])
      .out,
  );
  assert.match(viaTf.backend, /tfjs \(wasm\)/);
  assert.match(dj.backend, /onnxruntime/);
  assert.ok(Math.abs(viaTf.nats - dj.nats) < 1e-4, `tfjs ${viaTf.nats} vs onnxruntime ${dj.nats}`);
  assert.equal(cli(['eval', '--run', run, '--engine', 'torch']).code, 2);

  const missing = cli(['eval', '--run', path.join(root, 'nowhere')]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /nowhere does not exist/);
  const bare = path.join(root, 'bare');
  saveModel(bare, cfg, w);
  const noCorpus = cli(['eval', '--run', bare]);
  assert.equal(noCorpus.code, 2);
  assert.match(noCorpus.err, new RegExp(`${path.join(bare, 'corpus').replace(/[/\\.]/g, '\\$&')}.*--data`));
  fs.rmSync(path.join(bare, 'weights.safetensors'));
  const noWeights = cli(['eval', '--run', bare, '--data', audio]);
  assert.equal(noWeights.code, 2);
  assert.match(noWeights.err, /weights\.safetensors is missing/);
  const emptySplit = cli(['eval', '--run', run, '--split', 'train']);
  assert.equal(emptySplit.code, 2);
  assert.match(emptySplit.err, /split train .* has no files/);
});
