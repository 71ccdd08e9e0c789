/**
 * Training on onnxruntime (traced forward, our reverse pass, clip and Adam in one graph) against
 * the tfjs trainer on the same weights, batches, resets and seed: weights and losses after several
 * steps, and a checkpoint taken on one engine continues on the other.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import { initParams } from '../src/models/param-spec.js';
import { type ModelConfig, modelPreset, paramSpecOf } from '../src/models/registry.js';
import { OrtTrainStep, rowLength } from '../src/train/ort-step.js';
import { TrainStep } from '../src/train/tf-step.js';
import { exportAdam } from '../src/train/adam-state.js';
import { codes, maxAbsDiff } from './model-helpers.js';

before(async () => {
  await initBackend('cpu');
});

function init(cfg: ModelConfig) {
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, 4, cfg.initStd);
  return new Map(specs.map((s) => [s.name, { shape: s.shape, data: v.get(s.name)! }]));
}

/** Step k's batch: streams continue (resets only at the start and in row 1 at step 3); crops always reset. */
function batch(cfg: ModelConfig, B: number, k: number) {
  const n = rowLength(cfg);
  const crops = cfg.kind === 'wavenet';
  const reset = Uint8Array.from({ length: B }, (_, b) => (crops || k === 0 || (k === 3 && b === 1) ? 1 : 0));
  const mask = Float32Array.from({ length: B * n }, (_, i) => (crops && i % n < n - cfg.segment ? 0 : 1));
  return { inputs: codes(B * n, 100 + k), targets: codes(B * n, 200 + k), mask, reset };
}

const relDiff = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let m = 1e-6;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
};

const cases: [string, ModelConfig, number][] = [
  ['ct-tiny', modelPreset('ct-tiny'), 1],
  ['txl-tiny', modelPreset('txl-tiny'), 1],
  ['wavenet-tiny', modelPreset('wavenet-tiny'), 1],
  [
    'ct-tiny, most-used compression',
    { ...modelPreset('ct-tiny'), compression: 'most-used', auxLoss: 'none' } as ModelConfig,
    1,
  ],
  ['ct-tiny, gradients accumulated over 2 micro-steps', modelPreset('ct-tiny'), 2],
];

for (const [name, cfg, accumulate] of cases) {
  test(`${name}: five training steps on onnxruntime match the tfjs trainer`, async () => {
    const B = 2;
    const opts = { lr: 1e-3, clip: 0.1, seed: 3, accumulate };
    const ref = new TrainStep(cfg, init(cfg), B, opts);
    const ort = await OrtTrainStep.open(cfg, init(cfg), B, { ...opts, threads: 1, device: 'cpu' });
    try {
      for (let k = 0; k < 5; k++) {
        const lr = 1e-3 * (k + 1);
        ref.setLearningRate(lr);
        ort.setLearningRate(lr);
        const a = ref.step(batch(cfg, B, k));
        const b = await ort.step(batch(cfg, B, k));
        assert.ok(Math.abs(a.loss - b.loss) < 1e-4 * Math.abs(a.loss), `step ${k}: loss ${b.loss} vs ${a.loss}`);
        assert.equal(b.applied, a.applied, `step ${k}: the update is applied on the same micro-steps`);
        assert.ok(
          Math.abs(a.gradNorm - b.gradNorm) < 1e-3 * a.gradNorm,
          `step ${k}: norm ${b.gradNorm} vs ${a.gradNorm}`,
        );
        if (cfg.kind === 'transformer' && cfg.compressedMemory > 0 && k >= 2)
          assert.ok(Math.abs(a.aux - b.aux) <= 1e-3 * Math.abs(a.aux) + 1e-7, `step ${k}: aux ${b.aux} vs ${a.aux}`);
      }
      // Adam moves each weight by at most about lr per step whatever the gradient's size, so near-zero
      // gradients (float noise of cancelling sums) may move differently on the two engines: weights
      // are compared against the total movement Adam could make, where a wrong gradient shows as O(1).
      const wa = ref.exportParams();
      const wb = ort.exportParams();
      const reach = [0, 1, 2, 3, 4].reduce((a, k) => a + 1e-3 * (k + 1), 0);
      let worst = 0;
      let where = '';
      for (const [k, t] of wa) {
        const d = maxAbsDiff(wb.get(k)!.data, t.data) / reach;
        if (d > worst) [worst, where] = [d, k];
      }
      assert.ok(worst < 0.02, `weights after 5 steps differ by ${worst} of Adam's reach (${where})`);
      // The optimizer state has the same keys and (to rounding) the same values on both engines.
      const sa = await exportAdam(ref.optimizer);
      const sb = ort.exportOptimizer();
      assert.deepEqual([...sb.keys()].sort(), [...sa.keys()].sort());
      assert.deepEqual(Array.from(sb.get('iterations')!.data), Array.from(sa.get('iterations')!.data));
      assert.ok(relDiff(sb.get('beta_powers')!.data, sa.get('beta_powers')!.data) < 1e-6);
    } finally {
      ref.dispose();
      await ort.dispose();
    }
  });
}
