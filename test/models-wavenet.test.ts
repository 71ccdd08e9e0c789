import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawEncode } from '../src/audio/mulaw.js';
import { entropyNats } from '../src/data/stats.js';
import { initBackend } from '../src/engine/backend.js';
import { nllLoss } from '../src/models/loss.js';
import { preset } from '../src/models/config.js';
import { initParams, paramCount, transformerParamSpec } from '../src/models/param-spec.js';
import {
  initialWavenetState,
  queuesFromState,
  wavenetForward,
  type WavenetState,
  wavenetStep,
} from '../src/models/wavenet.js';
import { receptiveField, type WavenetConfig, wavenetParamSpec, wavenetPreset } from '../src/models/wavenet-config.js';
import { SAMPLES } from './helpers.js';
import { codesTensor } from '../src/models/layers.js';
import { NUM_CODES } from '../src/util/codes.js';
import { codes, maxAbsDiff, ops } from './model-helpers.js';

function params(cfg: WavenetConfig, seed = 1, std = 0.2): Map<string, tf.Tensor> {
  const specs = wavenetParamSpec(cfg);
  const v = initParams(specs, seed, std);
  return new Map(
    specs.map((s) => [
      s.name,
      tf.tensor(
        s.init === 'normal' ? v.get(s.name)! : v.get(s.name)!.map((x, i) => x + 0.1 * Math.sin(i + s.name.length)),
        s.shape,
      ),
    ]),
  );
}

function forward(
  cfg: WavenetConfig,
  p: Map<string, tf.Tensor>,
  segs: Int32Array[],
  B: number,
): { logits: Float32Array; state: WavenetState<tf.Tensor> } {
  let state = initialWavenetState(ops, cfg, B);
  const out: Float32Array[] = [];
  for (const s of segs) {
    const r = wavenetForward(ops, cfg, p, codesTensor(ops, s, NUM_CODES), null, state);
    out.push(r.logits.dataSync() as Float32Array);
    state = r.state;
  }
  // Rows are interleaved per segment: regroup as [B][time][256].
  const n = segs[0].length / B;
  const res = new Float32Array(out.length * B * n * 256);
  out.forEach((l, k) => {
    for (let b = 0; b < B; b++) res.set(l.subarray(b * n * 256, (b + 1) * n * 256), (b * out.length * n + k * n) * 256);
  });
  return { logits: res, state };
}

/** Rows of B streams, cut into segments of n (row-major [B, n] per segment). */
function cut(streams: Int32Array[], n: number): Int32Array[] {
  const T = streams[0].length;
  return Array.from({ length: T / n }, (_, k) =>
    Int32Array.from(streams.flatMap((s) => [...s.subarray(k * n, (k + 1) * n)])),
  );
}

const mid = {
  kind: 'wavenet',
  vocab: 256,
  stacks: 2,
  layersPerStack: 6,
  residualChannels: 8,
  dilationChannels: 8,
  skipChannels: 12,
  headChannels: 16,
  segment: 32,
  initStd: 0.02,
  seed: 0,
} as WavenetConfig;

test('presets: receptive field, and sizes comparable to the transformers', () => {
  assert.equal(receptiveField(wavenetPreset('wavenet-tiny')), 1 + 1 + 2 + 4 + 8);
  assert.equal(receptiveField(wavenetPreset('wavenet-paper')), 1 + 3 * 1023);
  const count = (c: WavenetConfig) => paramCount(wavenetParamSpec(c));
  const paper = count(wavenetPreset('wavenet-paper'));
  assert.ok(paper > 38e6 && paper < 42e6, `wavenet-paper has ${paper}`);
  const cpu = count(wavenetPreset('wavenet-cpu'));
  const ct = paramCount(transformerParamSpec(preset('ct-cpu')));
  assert.ok(Math.abs(cpu / ct - 1) < 0.1, `wavenet-cpu ${cpu} vs ct-cpu ${ct}`);
  // By hand for the tiny preset: embed + 4 layers x (2 taps + bias + res + skip) + head.
  const R = 16,
    D = 16,
    S = 32,
    E = 32;
  assert.equal(
    count(wavenetPreset('wavenet-tiny')),
    256 * R + 4 * (2 * R * 2 * D + 2 * D + D * R + R + D * S + S) + S * E + E + E * 256 + 256,
  );
});

for (const backend of ['wasm', 'cpu'] as const) {
  test(`[${backend}] causality and a finite receptive field`, async () => {
    await initBackend(backend);
    const p = params(mid);
    const rf = receptiveField(mid);
    const T = 160;
    const base = codes(T, 4);
    const a = forward(mid, p, [base], 1).logits;
    const t = 40;
    const changed = Int32Array.from(base);
    changed[t] = (changed[t] + 100) % 256;
    const b = forward(mid, p, [changed], 1).logits;
    assert.deepEqual(b.subarray(0, t * 256), a.subarray(0, t * 256), 'nothing before t moves');
    assert.ok(maxAbsDiff(b.subarray(t * 256, (t + 1) * 256), a.subarray(t * 256, (t + 1) * 256)) > 1e-3);
    assert.ok(
      maxAbsDiff(b.subarray((t + rf) * 256), a.subarray((t + rf) * 256)) < 1e-6,
      'beyond the receptive field nothing moves',
    );
    // The deepest path (every layer's past tap) is a product of one factor per layer: visible in a
    // shallow net with larger weights, where the last position that sees t must move.
    const tiny = { ...mid, stacks: 1, layersPerStack: 3 } as WavenetConfig;
    const pt = params(tiny, 1, 1.0);
    const rt = receptiveField(tiny);
    const ta = forward(tiny, pt, [base], 1).logits;
    const tb = forward(tiny, pt, [changed], 1).logits;
    assert.ok(
      maxAbsDiff(tb.subarray((t + rt - 1) * 256, (t + rt) * 256), ta.subarray((t + rt - 1) * 256, (t + rt) * 256)) >
        1e-6,
      'the last position that sees t',
    );
    assert.ok(maxAbsDiff(tb.subarray((t + rt) * 256), ta.subarray((t + rt) * 256)) === 0, 'and none after it');
  });

  test(`[${backend}] segments with carried state score exactly as one long pass`, async () => {
    await initBackend(backend);
    const p = params(mid, 2);
    const streams = [codes(192, 1), codes(192, 2)];
    const whole = forward(mid, p, cut(streams, 192), 2).logits;
    for (const n of [64, 16, 12]) {
      const parts = forward(mid, p, cut(streams, n), 2).logits;
      assert.ok(maxAbsDiff(parts, whole) < 1e-5, `segments of ${n}: ${maxAbsDiff(parts, whole)}`);
    }
  });
}

test('the fast single-sample step reproduces the full convolution over thousands of steps', async () => {
  await initBackend('wasm');
  const p = params(mid, 3);
  const T = 2400;
  const prompt = 100;
  const streams = [codes(T, 7), codes(T, 8)];
  const whole = forward(mid, p, cut(streams, T), 2).logits;
  // Prime in segment mode on a prompt, then continue one sample at a time from the queues.
  const primed = forward(
    mid,
    p,
    cut(
      streams.map((s) => s.subarray(0, prompt)),
      prompt,
    ),
    2,
  );
  const q = queuesFromState(ops, mid, primed.state);
  let worst = 0;
  for (let t = prompt; t < T; t++) {
    const logits = tf.tidy(() => wavenetStep(ops, mid, p, [streams[0][t], streams[1][t]], q).dataSync());
    for (let b = 0; b < 2; b++)
      worst = Math.max(
        worst,
        maxAbsDiff(logits.subarray(b * 256, (b + 1) * 256), whole.subarray((b * T + t) * 256, (b * T + t + 1) * 256)),
      );
  }
  assert.ok(worst < 1e-4, `max difference ${worst}`);
});

test('a reset row scores as a fresh model', async () => {
  await initBackend('wasm');
  const p = params(mid, 5);
  let state = initialWavenetState(ops, mid, 2);
  const n = 48;
  state = wavenetForward(ops, mid, p, codesTensor(ops, codes(2 * n, 1), NUM_CODES), null, state).state;
  const seg = codes(2 * n, 2);
  const both = wavenetForward(ops, mid, p, codesTensor(ops, seg, NUM_CODES), [1, 0], state).logits.dataSync();
  const fresh = forward(mid, p, [seg.subarray(0, n)], 1).logits;
  assert.ok(maxAbsDiff(both.subarray(0, n * 256), fresh) < 1e-5);
  const fresh1 = forward(mid, p, [seg.subarray(n)], 1).logits;
  assert.ok(maxAbsDiff(both.subarray(n * 256), fresh1) > 1e-4);
});

test('WaveNet gradients match central finite differences', async () => {
  await initBackend('cpu');
  const cfg = { ...mid, stacks: 1, layersPerStack: 3 } as WavenetConfig;
  const specs = wavenetParamSpec(cfg);
  const v = initParams(specs, 9, 0.3);
  const seg = codes(24, 5);
  const targets = codes(24, 6);
  const mask = new Float32Array(24).fill(1);
  const loss = (vals: Map<string, Float32Array>) =>
    tf.tidy(() => {
      const p = new Map(specs.map((s) => [s.name, tf.tensor(vals.get(s.name)!, s.shape)]));
      return nllLoss(
        ops,
        wavenetForward(ops, cfg, p, codesTensor(ops, seg, NUM_CODES), null, initialWavenetState(ops, cfg, 1)).logits,
        targets,
        mask,
      ).dataSync()[0];
    });
  const vars = new Map(
    specs.map((s) => [s.name, tf.variable(tf.tensor(v.get(s.name)!, s.shape), true, `wnfd-${s.name}`)]),
  );
  const { grads } = tf.variableGrads(
    () =>
      nllLoss(
        ops,
        wavenetForward(
          ops,
          cfg,
          vars as unknown as Map<string, tf.Tensor>,
          codesTensor(ops, seg, NUM_CODES),
          null,
          initialWavenetState(ops, cfg, 1),
        ).logits,
        targets,
        mask,
      ) as tf.Scalar,
    [...vars.values()],
  );
  const eps = 1e-2;
  for (const name of [
    'embed.weight',
    'layers.0.conv.w0',
    'layers.1.conv.w1',
    'layers.2.conv.b',
    'layers.0.res.w',
    'layers.1.skip.w',
    'head.w1',
    'head.b2',
  ]) {
    const g = grads[vars.get(name)!.name].dataSync();
    const idx = Array.from(g.keys())
      .sort((x, y) => Math.abs(g[y]) - Math.abs(g[x]))
      .slice(0, 3);
    for (const i of idx) {
      const up = new Map(v);
      const down = new Map(v);
      up.set(
        name,
        Float32Array.from(v.get(name)!, (x, k) => (k === i ? x + eps : x)),
      );
      down.set(
        name,
        Float32Array.from(v.get(name)!, (x, k) => (k === i ? x - eps : x)),
      );
      const fd = (loss(up) - loss(down)) / (2 * eps);
      assert.ok(
        Math.abs(fd - g[i]) <= 2e-3 + 0.05 * Math.abs(g[i]),
        `${name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`,
      );
    }
  }
  tf.dispose([...vars.values()]);
});

test('a tiny WaveNet learns a real speech clip well below its unigram entropy', async (t) => {
  await initBackend('wasm');
  const clip = muLawEncode((await decodeAudio(path.join(SAMPLES, 'train', 'vm-review.wav'), 16000)).samples);
  const hist = new Float64Array(256);
  for (const c of clip) hist[c]++;
  const unigram = entropyNats(hist);
  const cfg = wavenetPreset('wavenet-tiny');
  const specs = wavenetParamSpec(cfg);
  const init = initParams(specs, 1, 0.1);
  const vars = new Map(
    specs.map((s) => [s.name, tf.variable(tf.tensor(init.get(s.name)!, s.shape), true, `wnlearn-${s.name}`)]),
  );
  const p = vars as unknown as Map<string, tf.Tensor>;
  const opt = tf.train.adam(3e-3);
  const rf = receptiveField(cfg);
  const B = 8;
  const n = cfg.segment;
  const L = rf - 1 + n;
  let seed = 12345;
  const nlls: number[] = [];
  for (let step = 0; step < 250; step++) {
    const inputs = new Int32Array(B * L);
    const targets = new Int32Array(B * L);
    const mask = new Float32Array(B * L);
    for (let b = 0; b < B; b++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const start = seed % (clip.length - L - 1);
      for (let i = 0; i < L; i++) {
        inputs[b * L + i] = clip[start + i];
        targets[b * L + i] = clip[start + i + 1];
        mask[b * L + i] = i >= rf - 1 ? 1 : 0;
      }
    }
    const cost = opt.minimize(
      () =>
        nllLoss(
          ops,
          wavenetForward(ops, cfg, p, codesTensor(ops, inputs, NUM_CODES), null, initialWavenetState(ops, cfg, B))
            .logits,
          targets,
          mask,
        ) as tf.Scalar,
      true,
      [...vars.values()],
    )!;
    nlls.push(cost.dataSync()[0]);
    cost.dispose();
  }
  const last = nlls.slice(-50).reduce((a, x) => a + x, 0) / 50;
  t.diagnostic(
    `unigram ${unigram.toFixed(3)} nats; WaveNet NLL first ${nlls[0].toFixed(3)}, last 50 steps ${last.toFixed(3)}`,
  );
  assert.ok(last < unigram - 1, `NLL ${last.toFixed(3)} vs unigram ${unigram.toFixed(3)}`);
  tf.dispose([...vars.values()]);
});

test('WaveNet weights save and load as safetensors + config.json', async () => {
  const { saveModel, loadModel } = await import('../src/models/model-files.js');
  const { tempDir } = await import('./helpers.js');
  const cfg = wavenetPreset('wavenet-tiny');
  const specs = wavenetParamSpec(cfg);
  const v = initParams(specs, 4, 0.02);
  const dir = `${tempDir()}/wn`;
  saveModel(dir, cfg, new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }])));
  const back = loadModel(dir);
  assert.deepEqual(back.cfg, cfg);
  for (const s of specs) assert.deepEqual(back.params.get(s.name)!.data, v.get(s.name));
  assert.throws(() => saveModel(dir, { ...cfg, stacks: 2 }, back.params), /missing layers\.4\.conv\.w0/);
});

test('a WaveNet crop at a file start is trained with exactly the NLL evaluation gives those samples', async () => {
  await initBackend('wasm');
  const { CropStream } = await import('../src/data/batches.js');
  const { evaluateCodes } = await import('../src/infer/evaluate.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const cfg = wavenetPreset('wavenet-tiny');
  const specs = wavenetParamSpec(cfg);
  const v = initParams(specs, 3, 0.02);
  const real = muLawEncode((await decodeAudio(path.join(SAMPLES, 'valid', 'vm-tempgreeting2.wav'), 16000)).samples);
  // A "file" shorter than one crop: the crop holds all of it, from its first sample, every pair scored.
  const file = real.subarray(4000, 4000 + 500);
  const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-crop-')), 'split.u8');
  fs.writeFileSync(bin, file);
  const stream = new CropStream(
    { path: bin, files: [{ offset: 0, length: file.length }] },
    { batch: 1, receptiveField: receptiveField(cfg), targetLength: 600, seed: 1 },
  );
  const b = stream.next();
  stream.close();
  assert.equal(b.tokens, file.length - 1, 'every (input, target) pair of the file is scored');
  const p = new Map(specs.map((s) => [s.name, tf.tensor(v.get(s.name)!, s.shape)]));
  const trained = tf.tidy(
    () =>
      nllLoss(
        ops,
        wavenetForward(ops, cfg, p, codesTensor(ops, b.inputs, NUM_CODES), b.reset, initialWavenetState(ops, cfg, 1))
          .logits,
        b.targets,
        b.mask,
      ).dataSync()[0],
  );
  const evaluated = await evaluateCodes(
    cfg,
    new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }])),
    [{ path: 'file', codes: file }],
    { batch: 1 },
  );
  assert.ok(Math.abs(trained - evaluated.nats) < 1e-5, `training NLL ${trained} vs evaluation ${evaluated.nats}`);
  tf.dispose([...p.values()]);
});
