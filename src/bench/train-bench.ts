import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../engine/backend.js';
import { ctForward, stateTensors } from '../models/compressive.js';
import { preset, type TransformerConfig } from '../models/config.js';
import { transformerFlopsPerSample } from '../models/flops.js';
import { initParams, paramCount, transformerParamSpec } from '../models/param-spec.js';
import { TransformerStep } from '../train/tf-step.js';
import type { BenchRow } from './prepare-bench.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function seededInit(cfg: TransformerConfig) {
  const specs = transformerParamSpec(cfg);
  const values = initParams(specs, cfg.seed, cfg.initStd);
  return { count: paramCount(specs), init: new Map(specs.map((s) => [s.name, { shape: s.shape, data: values.get(s.name)! }])) };
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

/**
 * Training-step and forward throughput of a preset on one backend, in samples (tokens) per second,
 * with FLOPs per sample so the gap to the backend's matmul ceiling is visible.
 */
export async function benchTrain(presets: string[], backends: BackendName[], opts: { batch?: number; steps?: number; log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const log = opts.log ?? (() => {});
  for (const backend of backends) {
    const info = await initBackend(backend);
    const gflops = matmulGflops();
    rows.push({ name: `${backend}: matmul 2048x128x512`, value: gflops, unit: 'GFLOP/s', note: info.detail });
    // The pure-JS backend is ~100x slower: one short step keeps its measurement to seconds.
    const slow = backend === 'cpu';
    for (const name of presets) {
      const cfg = preset(name);
      const B = slow ? 1 : opts.batch ?? 8;
      const steps = slow ? 2 : opts.steps ?? 6;
      const n = cfg.segment;
      const { count, init } = seededInit(cfg);
      const trainer = new TransformerStep(cfg, init, B, { lr: 3e-4, clip: 0.1 });
      const inputs = Int32Array.from({ length: B * n }, (_, i) => (i * 37 + 11) % 256);
      const targets = Int32Array.from({ length: B * n }, (_, i) => (i * 53 + 5) % 256);
      const mask = new Float32Array(B * n).fill(1);
      const times: number[] = [];
      for (let s = 0; s < steps + 1; s++) {
        const t0 = performance.now();
        trainer.step({ inputs, targets, mask, reset: null });
        if (s > 0) times.push((performance.now() - t0) / 1000); // the first step compiles kernels and fills memory
      }
      const fwdTimes: number[] = [];
      let state = trainer.state;
      for (let s = 0; s < Math.max(2, steps); s++) {
        const t0 = performance.now();
        let out = state;
        tf.tidy(() => {
          const o = ctForward(trainer.ops, cfg, trainer.params, inputs, null, state);
          o.logits.dataSync();
          for (const t of stateTensors(o.state)) tf.keep(t);
          out = o.state;
        });
        if (state !== trainer.state) tf.dispose(stateTensors(state).filter((t) => !stateTensors(out).includes(t)));
        state = out;
        fwdTimes.push((performance.now() - t0) / 1000);
      }
      if (state !== trainer.state) tf.dispose(stateTensors(state).filter((t) => !stateTensors(trainer.state).includes(t)));
      trainer.dispose();
      const flops = transformerFlopsPerSample(cfg);
      const trainRate = (B * n) / median(times);
      const fwdRate = (B * n) / median(fwdTimes);
      rows.push({ name: `${backend}: ${name} training step`, value: trainRate, unit: 'samples/s', note: `B ${B} x ${n}, ${(count / 1e6).toFixed(2)}M params, ${(flops.train / 1e6).toFixed(1)} MFLOP/sample -> ${((trainRate * flops.train) / 1e9).toFixed(2)} GFLOP/s` });
      rows.push({ name: `${backend}: ${name} forward`, value: fwdRate, unit: 'samples/s', note: `${(flops.forward / 1e6).toFixed(1)} MFLOP/sample -> ${((fwdRate * flops.forward) / 1e9).toFixed(2)} GFLOP/s` });
      log(`${backend} ${name} done`);
    }
  }
  return rows;
}

