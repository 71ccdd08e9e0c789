/**
 * The floor a generation step is judged against (`ctspeech bench --only floor`): what onnxruntime
 * costs per `run` of a trivial graph, per extra kernel, and how fast this machine reads the bytes a
 * step must touch (weights and caches), at that working-set size. Per preset, the one-sample step
 * graph's node count and bytes turn those into two lower bounds on the time of a step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnx from 'onnx-proto';
import type { Feeds } from '../engine/executor.js';
import { type Int64, num } from '../engine/onnx-check.js';
import { OnnxTracer } from '../engine/onnx-trace.js';
import { ensureGraph } from '../infer/onnx-export.js';
import { loadOrt, OrtExecutor } from '../infer/ort-executor.js';
import { saveModel } from '../models/model-files.js';
import { modelPreset } from '../models/registry.js';
import type { BenchRow } from './prepare-bench.js';
import { median, seededInit } from './train-bench.js';

const RATE = 16000;

/** Median seconds of `f` over `reps` calls after `warm` unmeasured ones. */
async function timeIt(f: () => unknown, reps: number, warm = 3): Promise<number> {
  for (let i = 0; i < warm; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/**
 * A graph of `kernels` chained Adds on a [1, 64] input, opened on one thread. `inputs` - 1 further
 * [1, 64] inputs are fed and added in; the last `outputs` Adds are graph outputs.
 */
async function chainGraph(kernels: number, inputs = 1, outputs = 1): Promise<{ exec: OrtExecutor; feeds: Feeds }> {
  const t = new OnnxTracer();
  const data = new Float32Array(64).fill(1);
  const feeds: Feeds = {};
  const fed = Array.from({ length: inputs }, (_, i) => {
    feeds[`x${i}`] = { data, shape: [1, 64] };
    return t.input(`x${i}`, data, [1, 64]);
  });
  let x = fed[0];
  const c = t.constant(new Float32Array(64).fill(1e-3), [1, 64]);
  for (let k = 0; k < kernels; k++) {
    x = t.add(x, k > 0 && k < inputs ? fed[k] : c);
    if (k >= kernels - outputs) t.output(`y${k}`, x);
  }
  const file = path.join(os.tmpdir(), `ctspeech-bench-floor-${process.pid}-${kernels}-${inputs}-${outputs}.onnx`);
  fs.writeFileSync(file, t.toModel({ graphName: 'chain' }));
  try {
    const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
    return { exec, feeds };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Median seconds of one run of a chain graph. */
async function chainRun(kernels: number, inputs = 1, outputs = 1): Promise<number> {
  const g = await chainGraph(kernels, inputs, outputs);
  try {
    return await timeIt(() => g.exec.run(g.feeds), 2000, 200);
  } finally {
    await g.exec.dispose();
  }
}

/** GB/s of reading and writing a working set of `bytes` (copying half into the other half). */
export function copyBandwidth(bytes: number): number {
  const n = Math.max(1024, Math.floor(bytes / 8));
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n);
  const reps = Math.max(3, Math.min(200, Math.floor(2e9 / bytes)));
  for (let i = 0; i < 3; i++) b.set(a);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    b.set(a);
    times.push((performance.now() - t0) / 1000);
  }
  return (2 * 4 * n) / median(times) / 1e9;
}

/**
 * Nodes, inputs, outputs and bytes (weights, inputs) of a graph as onnxruntime runs it: after its
 * optimisations (constant folding, fusions), which it writes out for us to count.
 */
export async function graphWeight(
  file: string,
): Promise<{ nodes: number; inputs: number; outputs: number; weightBytes: number; inputBytes: number }> {
  const ort = await loadOrt();
  const optimized = path.join(os.tmpdir(), `ctspeech-bench-optimized-${process.pid}.onnx`);
  // Severity 3: onnxruntime warns that an optimised graph is specific to this machine, as we know.
  const s = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: optimized,
    logSeverityLevel: 3,
  });
  await s.release();
  try {
    const g = onnx.onnx.ModelProto.decode(fs.readFileSync(optimized)).graph!;
    const size = (dims: Int64[]) => dims.reduce((a: number, d) => a * num(d), 1);
    const weightBytes = (g.initializer ?? []).reduce((a, t) => a + 4 * size(t.dims ?? []), 0);
    const inputBytes = (g.input ?? []).reduce(
      (a, v) => a + 4 * size((v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue)),
      0,
    );
    const inputs = (g.input ?? []).length;
    return { nodes: (g.node ?? []).length, inputs, outputs: (g.output ?? []).length, weightBytes, inputBytes };
  } finally {
    fs.rmSync(optimized, { force: true });
  }
}

export async function benchFloor(presets: string[], opts: { log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => {});
  const rows: BenchRow[] = [];
  const runOne = await chainRun(1);
  const perKernel = ((await chainRun(257)) - runOne) / 256;
  const perInput = ((await chainRun(17, 17)) - (await chainRun(17))) / 16;
  const perOutput = ((await chainRun(17, 1, 17)) - (await chainRun(17))) / 16;
  rows.push({
    name: 'onnxruntime: one run of a one-node graph',
    value: runOne * 1e6,
    unit: 'µs',
    note: '[1, 64] in and out, 1 thread: the fixed cost of a run from JavaScript',
  });
  rows.push({
    name: 'onnxruntime: each further small kernel',
    value: perKernel * 1e6,
    unit: 'µs',
    note: '257 chained Adds on [1, 64] against 1, 1 thread',
  });
  rows.push({
    name: 'onnxruntime: each further graph input',
    value: perInput * 1e6,
    unit: 'µs',
    note: '17 Adds fed 17 [1, 64] inputs against 1',
  });
  rows.push({
    name: 'onnxruntime: each further graph output',
    value: perOutput * 1e6,
    unit: 'µs',
    note: '17 Adds returning 17 [1, 64] outputs against 1: each becomes a JavaScript tensor',
  });
  const dram = copyBandwidth(256 * 2 ** 20);
  rows.push({ name: 'memory: copy bandwidth, 256 MiB working set', value: dram, unit: 'GB/s', note: 'read + write' });
  log('floor: run, kernel and memory costs');
  for (const name of presets) {
    const cfg = modelPreset(name);
    const { init } = seededInit(cfg);
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-bench-'));
    try {
      saveModel(run, cfg, init);
      const step = await graphWeight(ensureGraph(run, cfg, init, { kind: 'step', batch: 1, length: 1 }).file);
      const bytes = step.weightBytes + step.inputBytes;
      const bw = copyBandwidth(bytes);
      const memFloor = bytes / (bw * 1e9);
      const opFloor =
        runOne + perKernel * (step.nodes - 1) + perInput * (step.inputs - 1) + perOutput * (step.outputs - 1);
      const floor = Math.max(memFloor, opFloor);
      rows.push({
        name: `floor: ${name} one-sample step`,
        value: 1 / floor,
        unit: 'samples/s',
        note:
          `${step.nodes} kernels, ${step.inputs} inputs, ${step.outputs} outputs -> ` +
          `${(opFloor * 1e6).toFixed(0)} µs of run + kernel overhead; ` +
          `${(bytes / 2 ** 20).toFixed(1)} MiB read at ${bw.toFixed(1)} GB/s -> ${(memFloor * 1e6).toFixed(0)} µs; ` +
          `real-time factor ${(RATE * floor).toFixed(2)} at best`,
      });
      log(`floor: ${name}`);
    } finally {
      fs.rmSync(run, { recursive: true, force: true });
    }
  }
  return rows;
}
