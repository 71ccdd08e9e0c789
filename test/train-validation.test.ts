/**
 * Validation during training on onnxruntime (one session, weights fed as inputs) scores exactly
 * what evaluation on tfjs scores for the same weights, and follows the weights as they change.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import { evaluateCodes } from '../src/infer/evaluate.js';
import { modelPreset } from '../src/models/registry.js';
import { openValidator } from '../src/train/validation.js';
import { anyParams } from './infer-helpers.js';
import { codes } from './model-helpers.js';

await initBackend('cpu');

for (const name of ['ct-tiny', 'wavenet-tiny']) {
  test(`${name}: validation on onnxruntime equals tfjs evaluation, for each new set of weights`, async () => {
    const cfg = modelPreset(name);
    const files = [300, 170, 90].map((len, i) => ({ path: `f${i}`, codes: Uint8Array.from(codes(len, 60 + i)) }));
    const opts = { batch: 2, length: cfg.segment };
    const v = openValidator('onnxruntime', { threads: 1, device: 'cpu' });
    try {
      const seen: number[] = [];
      for (const seed of [3, 4]) {
        const params = anyParams(cfg, seed);
        const got = await v.run(cfg, params, files, opts);
        const want = await evaluateCodes(cfg, params, files, opts);
        assert.equal(got.engine.engine, 'onnxruntime');
        assert.equal(got.totalSamples, want.totalSamples);
        assert.ok(Math.abs(got.nats - want.nats) < 1e-5, `weights ${seed}: ${got.nats} vs tfjs ${want.nats}`);
        seen.push(got.nats);
      }
      assert.notEqual(seen[0], seen[1], 'the second validation scored the new weights');
    } finally {
      await v.dispose();
    }
  });
}
