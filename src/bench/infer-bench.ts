import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openGenerator, ortOpener } from '../infer/engines.js';
import { type EvalFile, evaluateCodes } from '../infer/evaluate.js';
import { defaultBlockSize, generateCodes } from '../infer/generate.js';
import { ensureGraph } from '../infer/onnx-export.js';
import { OrtExecutor } from '../infer/ort-executor.js';
import { type ParamArrays, saveModel } from '../models/model-files.js';
import { familyOf, type ModelConfig, modelPreset } from '../models/registry.js';
import { SegmentScorer } from '../models/segment-runner.js';
import type { BenchRow } from './prepare-bench.js';
import { median, seededInit } from './train-bench.js';
import { NUM_CODES } from '../util/codes.js';

const RATE = 16000;

/**
 * onnxruntime figures of BENCHMARKS.md: evaluation throughput of the segment graph (batch 8,
 * 1 and all threads) and generation samples/s with the real-time factor at 16 kHz, batch 1 and 8.
 * Weights are the seeded initialisation: speed does not depend on training.
 */
export async function benchInfer(
  presets: string[],
  opts: { log?: (s: string) => void; genSteps?: number } = {},
): Promise<BenchRow[]> {
  const log = opts.log ?? (() => {});
  const rows: BenchRow[] = [];
  const cores = os.availableParallelism();
  for (const name of presets) {
    const cfg = modelPreset(name);
    const { init } = seededInit(cfg);
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-bench-'));
    try {
      saveModel(run, cfg, init);
      const family = familyOf(cfg);
      const flops = family.flopsPerSample(cfg);
      const n = family.scoreLength(cfg);
      const B = 8;
      const file = ensureGraph(run, cfg, init, { kind: 'segment', batch: B, length: n }).file;
      for (const threads of [...new Set([1, cores])]) {
        const { exec, info } = await OrtExecutor.open(file, { threads, device: 'cpu' });
        const scorer = new SegmentScorer(family.hostState(cfg, B), n, exec);
        const tokens = Int32Array.from({ length: B * n }, (_, i) => (i * 37 + 11) % NUM_CODES);
        // Three untimed calls, then the median of twenty: the PyTorch reference's bench_torch.py
        // measures its evaluation the same way, so the two figures compare like with like.
        const times: number[] = [];
        for (let s = 0; s < 23; s++) {
          const t0 = performance.now();
          await scorer.run(tokens, null);
          if (s >= 3) times.push((performance.now() - t0) / 1000);
        }
        await exec.dispose();
        const rate = (B * n) / median(times);
        rows.push({
          name: `onnxruntime: ${name} evaluation, ${threads} thread${threads > 1 ? 's' : ''}`,
          value: rate,
          unit: 'samples/s',
          note:
            `B ${B} x ${n}, ${(flops.forward / 1e6).toFixed(1)} MFLOP/sample -> ` +
            `${((rate * flops.forward) / 1e9).toFixed(1)} GFLOP/s; ${info.summary}`,
        });
        log(rows[rows.length - 1].name);
      }
      rows.push(...(await benchOneLongFile(name, cfg, init, run, cores)));
      log(rows[rows.length - 1].name);
      // Enough steps to cross several memory rolls (every segment of samples) for the transformers.
      const steps = opts.genSteps ?? Math.max(2000, 3 * family.primeLength(cfg) + 17);
      // --count N streams share each kernel: the rate in all, and per stream in the note.
      for (const batch of [1, 4, 8, 32]) {
        const { gen, info } = await openGenerator(run, cfg, init, batch, { engine: 'onnxruntime', device: 'cpu' });
        await gen.prime(Uint8Array.of(128));
        const codes = new Int32Array(batch).fill(128);
        for (let s = 0; s < 20; s++) await gen.step(codes);
        const t0 = performance.now();
        for (let s = 0; s < steps; s++) await gen.step(codes);
        const secs = (performance.now() - t0) / 1000;
        await gen.dispose();
        const perRow = steps / secs;
        rows.push({
          name: `onnxruntime: ${name} generation, batch ${batch}`,
          value: perRow * batch,
          unit: 'samples/s',
          note:
            `${perRow.toFixed(0)} steps/s, real-time factor ${(RATE / perRow).toFixed(2)} per stream ` +
            `at 16 kHz (${steps} steps); ${info.summary}`,
        });
        log(rows[rows.length - 1].name);
      }
      // The whole loop, sampling included, one call per sample against a block graph drawing in the
      // graph (a transformer's at K 8, though not its default: slower than its steps).
      if (family.maxBlockSize(cfg) > 1)
        for (const block of [1, cfg.kind === 'transformer' ? 8 : defaultBlockSize(cfg, 1)]) {
          const sampling = { temperature: 1 };
          const { gen, info } = await openGenerator(run, cfg, init, 1, {
            engine: 'onnxruntime',
            device: 'cpu',
            blockSize: block,
            sampling,
          });
          const r = await generateCodes(gen, { seconds: steps / RATE, sampleRate: RATE, seed: 1, sampling });
          await gen.dispose();
          rows.push({
            name: `onnxruntime: ${name} generation with sampling, batch 1, ${block} sample${block > 1 ? 's' : ''}/call`,
            value: r.samplesPerSecond,
            unit: 'samples/s',
            note: `real-time factor ${r.realTimeFactor.toFixed(2)}, temperature 1 (${steps} samples); ${info.summary}`,
          });
          log(rows[rows.length - 1].name);
        }
    } finally {
      fs.rmSync(run, { recursive: true, force: true });
    }
  }
  return rows;
}

/**
 * Evaluation of 8 files, one 10x longer than the other 7, at batch 8: with rows moved to smaller
 * batches as files run out, and without; each against the time the same samples take at full batch
 * (17 equal files' worth, all rows busy).
 */
async function benchOneLongFile(
  name: string,
  cfg: ModelConfig,
  init: ParamArrays,
  run: string,
  threads: number,
): Promise<BenchRow[]> {
  const L = 2048;
  const codes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + seed * 11) % NUM_CODES);
  const open = ortOpener(run, { engine: 'onnxruntime', device: 'cpu', threads });
  const time = async (files: EvalFile[], shrink: boolean) => {
    const t0 = performance.now();
    const r = await evaluateCodes(cfg, init, files, { batch: 8, open, shrink });
    return { seconds: (performance.now() - t0) / 1000, r };
  };
  const uneven = [codes(10 * L, 0), ...Array.from({ length: 7 }, (_, i) => codes(L, i + 1))];
  const even = Array.from({ length: 17 }, (_, i) => codes(L, i + 20));
  const asFiles = (c: Uint8Array[]) => c.map((x, i) => ({ path: `f${i}`, codes: x }));
  await time(asFiles(even), true); // graphs exported and warm
  const full = await time(asFiles(even), true);
  const moved = await time(asFiles(uneven), true);
  const kept = await time(asFiles(uneven), false);
  const calls = moved.r.calls.map((c) => `${c.calls} at batch ${c.batch}`).join(', ');
  return [
    {
      name: `onnxruntime: ${name} evaluation, one file 10x the other 7, rows moved`,
      value: moved.seconds / full.seconds,
      unit: 'x full',
      note:
        `${moved.seconds.toFixed(1)} s against ${full.seconds.toFixed(1)} s for the same samples at full batch ` +
        `(${calls}); every row kept to the end: ${(kept.seconds / full.seconds).toFixed(2)}x, ${threads} threads`,
    },
  ];
}
