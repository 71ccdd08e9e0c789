#!/usr/bin/env node
// Peak memory of one onnxruntime training step: builds the training graph of a preset at a batch,
// opens it, runs one step on synthetic codes and prints the process's peak resident memory.
//   node scripts/train-memory.mjs <preset> <batch> [threads]
// Run each preset/batch in its own process: the peak (VmHWM) is per process.
import fs from 'node:fs';
import { familyOf, modelPreset, paramSpecOf } from '../dist/src/models/registry.js';
import { initParams } from '../dist/src/models/param-spec.js';
import { OrtTrainStep, rowLength } from '../dist/src/train/ort-step.js';

const [name, batchArg, threadsArg] = process.argv.slice(2);
if (!name || !batchArg) {
  console.error('usage: node scripts/train-memory.mjs <preset> <batch> [threads]');
  process.exit(2);
}
const peak = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const cfg = modelPreset(name);
const B = Number(batchArg);
const specs = paramSpecOf(cfg);
const values = initParams(specs, 1, cfg.initStd);
const init = new Map(specs.map((s) => [s.name, { shape: s.shape, data: values.get(s.name) }]));
const params = specs.reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0);
const n = rowLength(cfg);
const before = peak();
const t0 = performance.now();
const step = await OrtTrainStep.open(cfg, init, B, { lr: 1e-4, clip: 0.1, device: 'cpu', threads: threadsArg ? Number(threadsArg) : undefined });
const opened = performance.now();
const scored = familyOf(cfg).trainingWindows(cfg);
const codes = Uint8Array.from({ length: B * n }, (_, i) => (i * 37) % 256);
const mask = new Float32Array(B * n).fill(1);
const r = await step.step({ inputs: codes, targets: codes, mask, reset: new Uint8Array(B).fill(1) });
const done = performance.now();
await step.dispose();
const gib = (b) => (b / 2 ** 30).toFixed(2);
console.log(
  JSON.stringify({
    preset: name,
    batch: B,
    positions: B * n,
    windows: scored,
    params,
    loss: r.loss,
    openSeconds: +((opened - t0) / 1000).toFixed(1),
    stepSeconds: +((done - opened) / 1000).toFixed(1),
    peakGiB: +gib(peak()),
    beforeGiB: +gib(before),
  }),
);
