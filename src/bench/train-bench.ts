import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../engine/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Feeds } from '../engine/executor.js';
import { OnnxTracer } from '../engine/onnx-trace.js';
import { OrtExecutor } from '../infer/ort-executor.js';
import type { ParamArrays } from '../models/model-files.js';
import { type TrainingWindows, windowLength } from '../models/family.js';
import { OrtTrainStep } from '../train/ort-step.js';
import { initParams, paramCount } from '../models/param-spec.js';
import { familyOf, type ModelConfig, modelPreset, paramSpecOf } from '../models/registry.js';
import { TrainStep } from '../train/tf-step.js';
import type { BenchRow } from './prepare-bench.js';
import { NUM_CODES } from '../util/codes.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function seededInit(cfg: ModelConfig) {
  const specs = paramSpecOf(cfg);
  const values = initParams(specs, cfg.seed, cfg.initStd);
  return {
    count: paramCount(specs),
    init: new Map(specs.map((s) => [s.name, { shape: s.shape, data: values.get(s.name)! }])),
  };
}

/** Dense matmul throughput of the backend: the ceiling a training step is measured against. */
export function matmulGflops(m = 2048, k = 128, n = 512, reps = 10): number {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  tf.matMul(a, b).dispose();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    times.push((performance.now() - t0) / 1000);
  }
  tf.dispose([a, b]);
  return (2 * m * k * n) / median(times) / 1e9;
}

/** A batch of B rows: a stream segment, or a crop whose last `targets` positions are scored. */
function syntheticBatch(w: TrainingWindows, B: number) {
  const scored = w.kind === 'crops' ? w.targets : w.segment;
  const len = windowLength(w);
  const inputs = Int32Array.from({ length: B * len }, (_, i) => (i * 37 + 11) % NUM_CODES);
  const targets = Int32Array.from({ length: B * len }, (_, i) => (i * 53 + 5) % NUM_CODES);
  const mask = Float32Array.from({ length: B * len }, (_, i) => (i % len >= len - scored ? 1 : 0));
  return { inputs, targets, mask, scored: B * scored, positions: B * len };
}

/**
 * Training-step and forward throughput of a preset on one backend, in scored samples per second,
 * with FLOPs per sample so the gap to the backend's matmul ceiling is visible.
 */
export async function benchTrain(
  presets: string[],
  backends: (BackendName | 'onnxruntime')[],
  opts: { batch?: number; steps?: number; log?: (s: string) => void } = {},
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const log = opts.log ?? (() => {});
  for (const backend of backends) {
    if (backend === 'onnxruntime') {
      rows.push(...(await benchOrtTrain(presets, opts)));
      continue;
    }
    const info = await initBackend(backend);
    rows.push({ name: `${backend}: matmul 2048x128x512`, value: matmulGflops(), unit: 'GFLOP/s', note: info.detail });
    // The pure-JS backend is ~100x slower: one short batch keeps its measurement to seconds.
    const slow = backend === 'cpu';
    for (const name of presets) {
      const cfg = modelPreset(name);
      const family = familyOf(cfg);
      const windows = family.trainingWindows(cfg);
      // Crops carry a receptive field of unscored context: 8 WaveNet crops exceed wasm's 4 GB heap.
      const B = slow ? 1 : (opts.batch ?? (windows.kind === 'crops' ? 2 : 8));
      const steps = slow ? 2 : (opts.steps ?? 6);
      const { count, init } = seededInit(cfg);
      const trainer = new TrainStep(cfg, init, B, { lr: 3e-4, clip: 0.1 });
      const batch = syntheticBatch(windows, B);
      // Crops are independent: each step starts from a cleared state, as training does.
      const reset = windows.kind === 'crops' ? new Uint8Array(B).fill(1) : null;
      const times: number[] = [];
      for (let s = 0; s < steps + 1; s++) {
        const t0 = performance.now();
        trainer.step({ ...batch, reset });
        if (s > 0) times.push((performance.now() - t0) / 1000); // the first step compiles kernels and fills memory
      }
      const fwdTimes: number[] = [];
      let state = trainer.state;
      for (let s = 0; s < Math.max(2, steps); s++) {
        const t0 = performance.now();
        let out = state;
        tf.tidy(() => {
          const o = trainer.model.forward(trainer.ops, trainer.params, batch.inputs, reset, state);
          o.logits.dataSync();
          for (const t of trainer.model.stateTensors(o.state)) tf.keep(t);
          out = o.state;
        });
        if (state !== trainer.state) tf.dispose(trainer.model.stateTensors(state));
        state = out;
        fwdTimes.push((performance.now() - t0) / 1000);
      }
      if (state !== trainer.state) tf.dispose(trainer.model.stateTensors(state));
      trainer.dispose();
      const flops = family.flopsPerSample(cfg);
      // FLOPs are per processed position; crops process receptive-field context they do not score.
      const perScored = batch.positions / batch.scored;
      const trainRate = batch.scored / median(times);
      const fwdRate = batch.scored / median(fwdTimes);
      const shape =
        windows.kind === 'crops'
          ? `B ${B} crops of ${batch.positions / B}, ${windows.targets} scored`
          : `B ${B} x ${windows.segment}`;
      rows.push({
        name: `${backend}: ${name} training step`,
        value: trainRate,
        unit: 'samples/s',
        note:
          `${shape}, ${(count / 1e6).toFixed(2)}M params, ${(flops.train / 1e6).toFixed(1)} MFLOP/position -> ` +
          `${((trainRate * perScored * flops.train) / 1e9).toFixed(2)} GFLOP/s`,
      });
      rows.push({
        name: `${backend}: ${name} forward`,
        value: fwdRate,
        unit: 'samples/s',
        note:
          `${(flops.forward / 1e6).toFixed(1)} MFLOP/position -> ` +
          `${((fwdRate * perScored * flops.forward) / 1e9).toFixed(2)} GFLOP/s`,
      });
      log(`${backend} ${name} done`);
    }
  }
  return rows;
}

/** Training steps on onnxruntime (one traced graph per step, all cores), same batches as tfjs's. */
async function benchOrtTrain(
  presets: string[],
  opts: { batch?: number; steps?: number; log?: (s: string) => void },
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const name of presets) {
    const cfg = modelPreset(name);
    const windows = familyOf(cfg).trainingWindows(cfg);
    // Without wasm's 4 GB heap, WaveNet trains at the transformers' batch.
    const B = opts.batch ?? 8;
    const { count, init } = seededInit(cfg);
    const trainer = await OrtTrainStep.open(cfg, init, B, { lr: 3e-4, clip: 0.1, device: 'cpu' });
    const batch = syntheticBatch(windows, B);
    const reset = windows.kind === 'crops' ? new Uint8Array(B).fill(1) : null;
    const times: number[] = [];
    for (let s = 0; s < (opts.steps ?? 6) + 1; s++) {
      const t0 = performance.now();
      await trainer.step({ ...batch, reset });
      if (s > 0) times.push((performance.now() - t0) / 1000);
    }
    await trainer.dispose();
    const copy = await hostRoundTrip(init);
    const flops = familyOf(cfg).flopsPerSample(cfg);
    const rate = batch.scored / median(times);
    const perScored = batch.positions / batch.scored;
    rows.push({
      name: `onnxruntime: ${name} training step`,
      value: rate,
      unit: 'samples/s',
      note:
        `B ${B}, ${(count / 1e6).toFixed(2)}M params, ${os.availableParallelism()} threads -> ` +
        `${((rate * perScored * flops.train) / 1e9).toFixed(2)} GFLOP/s`,
    });
    rows.push({
      name: `onnxruntime: ${name} weights + Adam moments in and out, per step`,
      value: copy * 1000,
      unit: 'ms',
      note:
        `${((3 * 4 * count) / 2 ** 20).toFixed(1)} MiB each way, ` +
        `${((100 * copy) / median(times)).toFixed(1)}% of a step`,
    });
    opts.log?.(`onnxruntime ${name} done`);
  }
  return rows;
}

/**
 * What feeding the weights and both Adam moments to onnxruntime and reading them back costs, per
 * step: a graph that only passes them through (inputs wrapped, outputs copied into JavaScript).
 */
async function hostRoundTrip(init: ParamArrays): Promise<number> {
  const t = new OnnxTracer();
  const feeds: Feeds = {};
  for (const [k, v] of init)
    for (const slot of ['p', 'm', 'v']) {
      t.output(`out.${slot}.${k}`, t.input(`${slot}.${k}`, v.data, v.shape));
      feeds[`${slot}.${k}`] = { data: v.data, shape: v.shape };
    }
  const file = path.join(os.tmpdir(), `ctspeech-bench-copy-${process.pid}.onnx`);
  fs.writeFileSync(file, t.toModel({ graphName: 'copy' }));
  const { exec } = await OrtExecutor.open(file, { device: 'cpu' });
  fs.rmSync(file, { force: true });
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    await exec.run(feeds);
    if (i > 1) times.push((performance.now() - t0) / 1000);
  }
  await exec.dispose();
  return median(times);
}
