import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import type { TransformerConfig } from '../src/models/config.js';
import { modelPreset } from '../src/models/registry.js';
import { anyParams, checkStepsMatchSegments, tfGraphs } from './infer-helpers.js';
import { tinyConfig } from './model-helpers.js';

await initBackend('cpu');

const variants: [string, TransformerConfig][] = [
  ['ct-tiny (conv)', tinyConfig()],
  ['txl-tiny', modelPreset('txl-tiny') as TransformerConfig],
  ['mean-pool', tinyConfig({ compression: 'mean-pool' })],
  ['max-pool', tinyConfig({ compression: 'max-pool' })],
  ['dilated-conv', tinyConfig({ compression: 'dilated-conv' })],
];

for (const [name, cfg] of variants) {
  test(
    `tfjs: step-by-step generation of ${name} ` + 'reproduces segment-mode log-probabilities across memory rolls',
    async () => {
      const params = anyParams(cfg);
      // 6 segments: memory fills, compressed memory fills and its oldest slots are evicted.
      const worst = await checkStepsMatchSegments(
        cfg,
        tfGraphs(cfg, params, 2, cfg.segment),
        params,
        2,
        6 * cfg.segment,
        cfg.segment + 5,
        cfg.segment,
        2e-4,
      );
      assert.ok(worst < 2e-4);
    },
  );
}

test('tfjs: WaveNet fast steps after segment priming reproduce segment-mode log-probabilities', async () => {
  const cfg = modelPreset('wavenet-tiny');
  const params = anyParams(cfg);
  await checkStepsMatchSegments(cfg, tfGraphs(cfg, params, 2, 32), params, 2, 192, 70, 32, 2e-4);
});
