import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawEncode } from '../src/audio/mulaw.js';
import { entropyNats } from '../src/data/stats.js';
import { initBackend } from '../src/engine/backend.js';
import { TrainStep } from '../src/train/tf-step.js';
import { SAMPLES } from './helpers.js';
import { paramArrays, tinyConfig } from './model-helpers.js';

// A real learning check (not a timing): a tiny Compressive Transformer trained for a few hundred
// steps on one bundled speech clip must predict it far better than the clip's unigram entropy.
test('a tiny CT learns a real speech clip well below its unigram entropy', async (t) => {
  await initBackend('wasm');
  const clip = muLawEncode((await decodeAudio(path.join(SAMPLES, 'train', 'vm-review.wav'), 16000)).samples);
  const hist = new Float64Array(256);
  for (const c of clip) hist[c]++;
  const unigram = entropyNats(hist);

  const cfg = tinyConfig();
  const B = 8;
  const n = cfg.segment;
  const share = Math.floor(clip.length / B);
  const init = paramArrays(cfg, 1, 0.02);
  const trainer = new TrainStep(cfg, init, B, { lr: 3e-3, clip: 1 });
  const steps = 300;
  const nlls: number[] = [];
  for (let s = 0; s < steps; s++) {
    const inputs = new Int32Array(B * n);
    const targets = new Int32Array(B * n);
    const pos = s * n;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < n; i++) {
        inputs[b * n + i] = clip[b * share + pos + i];
        targets[b * n + i] = clip[b * share + pos + i + 1];
      }
    }
    const r = trainer.step({
      inputs,
      targets,
      mask: new Float32Array(B * n).fill(1),
      reset: s === 0 ? new Uint8Array(B).fill(1) : null,
    });
    assert.ok(!r.skipped, `step ${s} produced a non-finite loss`);
    nlls.push(r.nll);
  }
  trainer.dispose();
  const first = nlls.slice(0, 20).reduce((a, v) => a + v, 0) / 20;
  const last = nlls.slice(-50).reduce((a, v) => a + v, 0) / 50;
  t.diagnostic(
    `unigram ${unigram.toFixed(3)} nats; NLL first 20 steps ${first.toFixed(3)}, last 50 steps ${last.toFixed(3)}`,
  );
  assert.ok(
    last < unigram - 1,
    `NLL ${last.toFixed(3)} should be well below the unigram entropy ${unigram.toFixed(3)}`,
  );
});
