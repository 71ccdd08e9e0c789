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
import { OrtExecutor } from '../infer/ort-executor.js';
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

/** A graph of `kernels` chained Adds on a [1, 64] input, opened on one thread. */
async function chainGraph(kernels: number): Promise<{ exec: OrtExecutor; feeds: Feeds }> {
  const t = new OnnxTracer();
  const data = new Float32Array(64).fill(1);
  let x = t.input('x', data, [1, 64]);
  const c = t.constant(new Float32Array(64).fill(1e-3), [1, 64]);
  for (let k = 0; k < kernels; k++) x = t.add(x, c);
  t.output('y', x);
  const file = path.join(os.tmpdir(), `ctspeech-bench-floor-${process.pid}-${kernels}.onnx`);
  fs.writeFileSync(file, t.toModel({ graphName: 'chain' }));
  try {
    const { exec } = await OrtExecutor.open(file, { threads: 1, device: 'cpu' });
    return { exec, feeds: { x: { data, shape: [1, 64] } } };
  } finally {
    fs.rmSync(file, { force: true });
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

/** Nodes and bytes (weights, inputs) of an exported graph. */
export function graphWeight(file: string): { nodes: number; weightBytes: number; inputBytes: number } {
  const m = onnx.onnx.ModelProto.decode(fs.readFileSync(file));
  const g = m.graph!;
  const size = (dims: Int64[]) => dims.reduce((a: number, d) => a * num(d), 1);
  const weightBytes = (g.initializer ?? []).reduce((a, t) => a + 4 * size(t.dims ?? []), 0);
  const inputBytes = (g.input ?? []).reduce(
    (a, v) => a + 4 * size((v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue)),
    0,
  );
  return { nodes: (g.node ?? []).length, weightBytes, inputBytes };
}

export async function benchFloor(presets: string[], opts: { log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => {});
  const rows: BenchRow[] = [];
  const one = await chainGraph(1);
  const long = await chainGraph(257);
  const runOne = await timeIt(() => one.exec.run(one.feeds), 2000, 200);
  const runLong = await timeIt(() => long.exec.run(long.feeds), 500, 50);
  await one.exec.dispose();
  await long.exec.dispose();
  const perKernel = (runLong - runOne) / 256;
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
  const dram = copyBandwidth(256 * 2 ** 20);
  rows.push({ name: 'memory: copy bandwidth, 256 MiB working set', value: dram, unit: 'GB/s', note: 'read + write' });
  log('floor: run, kernel and memory costs');
  for (const name of presets) {
    const cfg = modelPreset(name);
    const { init } = seededInit(cfg);
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-bench-'));
    try {
      saveModel(run, cfg, init);
      const step = graphWeight(ensureGraph(run, cfg, init, { kind: 'step', batch: 1, length: 1 }).file);
      const bytes = step.weightBytes + step.inputBytes;
      const bw = copyBandwidth(bytes);
      const memFloor = bytes / (bw * 1e9);
      const opFloor = runOne + perKernel * (step.nodes - 1);
      const floor = Math.max(memFloor, opFloor);
      rows.push({
        name: `floor: ${name} one-sample step`,
        value: 1 / floor,
        unit: 'samples/s',
        note:
          `${step.nodes} nodes -> ${(opFloor * 1e6).toFixed(0)} µs of run + kernel overhead; ` +
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
