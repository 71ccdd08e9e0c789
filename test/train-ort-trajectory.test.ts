/**
 * 50 optimizer steps of the onnxruntime trainer (OrtTrainStep: forward, our reverse pass, global-norm
 * clipping and Adam in one graph) against the tfjs trainer (TrainStep on wasm, the backend a run
 * uses by default) from the same initial weights, seed and batches — real speech read by the
 * trainer's own batch streams — at the paper's clip (0.1) under a warm-up + cosine schedule, with
 * and without gradient accumulation. The training loss of every step (with accumulation, of its
 * last micro-batch), the last one included, agrees within 1e-3 nats, absolute: float32 differences
 * between the engines' kernels compound over the steps, and the bound says they stay far below any
 * effect of training (the loss falls by more than 0.1 nats over the run).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { CropStream, SegmentStream } from '../src/data/batches.js';
import { readManifest, splitSource } from '../src/data/manifest.js';
import { initBackend } from '../src/engine/backend.js';
import { familyOf, modelPreset } from '../src/models/registry.js';
import type { TrainBatch } from '../src/models/training-graph.js';
import { OrtTrainStep } from '../src/train/ort-step.js';
import { learningRate } from '../src/train/schedule.js';
import { TrainStep } from '../src/train/tf-step.js';
import { smallCorpus } from './corpus-helpers.js';
import { initWeights, relErr } from './ort-train-helpers.js';

const STEPS = 50;
const B = 2;
const SEED = 7;
const schedule = { warmupSteps: 5, totalSteps: STEPS, minLr: 1e-5, peakLr: 3e-3 };

let corpus = '';
before(async () => {
  await initBackend('wasm');
  corpus = await smallCorpus();
});

/** The batches a run of this model reads: the family's stream over the corpus's train split. */
function batches(name: string, count: number): TrainBatch[] {
  const cfg = modelPreset(name);
  const source = splitSource(corpus, readManifest(corpus), 'train');
  const w = familyOf(cfg).trainingWindows(cfg);
  const stream =
    w.kind === 'crops'
      ? new CropStream(source, { batch: B, receptiveField: w.receptiveField, targetLength: w.targets, seed: SEED })
      : new SegmentStream(source, { batch: B, segment: w.segment });
  try {
    // The clips open with near-silence; streams start past it, where the speech is.
    if (w.kind === 'streams') for (let i = 0; i < 800; i++) stream.next();
    return Array.from({ length: count }, () => {
      const b = stream.next();
      return { inputs: b.inputs, targets: b.targets, mask: b.mask, reset: b.reset };
    });
  } finally {
    stream.close();
  }
}

for (const [name, accumulate] of [
  ['ct-tiny', 1],
  ['txl-tiny', 1],
  ['wavenet-tiny', 1],
  ['ct-tiny', 2],
] as const) {
  const title = `${name}${accumulate > 1 ? `, accumulating ${accumulate} micro-batches per update` : ''}`;
  test(`${title}: 50 steps on onnxruntime end within 1e-3 nats of the tfjs trainer's loss`, async (t) => {
    const cfg = modelPreset(name);
    const data = batches(name, STEPS * accumulate);
    const opts = { lr: schedule.minLr, clip: 0.1, seed: SEED, accumulate };
    const ref = new TrainStep(cfg, initWeights(cfg, SEED), B, opts);
    const ort = await OrtTrainStep.open(cfg, initWeights(cfg, SEED), B, { ...opts, threads: 1, device: 'cpu' });
    try {
      const diffs: number[] = [];
      const losses: number[] = [];
      let clipped = 0;
      for (let k = 0; k < STEPS; k++) {
        const lr = learningRate(k, schedule);
        ref.setLearningRate(lr);
        ort.setLearningRate(lr);
        // The step's micro-batches (one without accumulation); the last one applies the update.
        let a = ref.step(data[k * accumulate]);
        let b = await ort.step(data[k * accumulate]);
        for (let i = 1; i < accumulate; i++) {
          assert.ok(!a.applied && !b.applied, `step ${k}: mid-cycle micro-batch ${i - 1} applies nothing`);
          a = ref.step(data[k * accumulate + i]);
          b = await ort.step(data[k * accumulate + i]);
        }
        assert.ok(a.applied && b.applied, `step ${k}: the update is applied`);
        assert.ok(!a.skipped && !b.skipped, `step ${k}: nothing is skipped`);
        diffs.push(Math.abs(a.loss - b.loss));
        losses.push(a.loss);
        if (a.gradNorm > opts.clip) clipped++;
        // The gradient norm is what clipping compares with the bound: it must agree too.
        assert.ok(
          Math.abs(a.gradNorm - b.gradNorm) <= 1e-3 * a.gradNorm,
          `step ${k}: gradient norm ${b.gradNorm} vs tfjs ${a.gradNorm}`,
        );
      }
      const worst = Math.max(...diffs);
      const wa = ref.exportParams();
      const wb = ort.exportParams();
      let wErr = 0;
      for (const [k, v] of wa) wErr = Math.max(wErr, relErr(wb.get(k)!.data, v.data));
      t.diagnostic(
        `loss ${losses[0].toFixed(4)} -> ${losses[STEPS - 1].toFixed(4)}; |onnxruntime - tfjs| at step 50 ` +
          `${diffs[STEPS - 1].toExponential(2)}, worst over 50 steps ${worst.toExponential(2)} ` +
          `(step ${diffs.indexOf(worst) + 1}); ${clipped} of 50 steps clipped; ` +
          `final weights relErr ${wErr.toExponential(2)}`,
      );
      assert.ok(diffs[STEPS - 1] <= 1e-3, `final loss differs by ${diffs[STEPS - 1]}`);
      assert.ok(worst <= 1e-3, `step ${diffs.indexOf(worst) + 1}: loss differs by ${worst}`);
      // The comparison is of a model that trained, under clipping most of the time.
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)) - 0.1, `loss fell: ${losses[0]} -> ${losses[49]}`);
      assert.ok(clipped >= 10, `clipping was active (${clipped} steps)`);
    } finally {
      ref.dispose();
      await ort.dispose();
    }
  });
}
