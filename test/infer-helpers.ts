/**
 * Shared by the inference tests: reference log-probabilities from the training code path
 * and step-vs-segment checks.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ctForward, initialState } from '../src/models/compressive.js';
import type { ParamArrays } from '../src/models/model-files.js';
import { initParams } from '../src/models/param-spec.js';
import { familyOf, type ModelConfig, paramSpecOf } from '../src/models/registry.js';
import { initialWavenetState, wavenetForward } from '../src/models/wavenet.js';
import type { GraphExecutor } from '../src/engine/executor.js';
import type { GenerationGraphs, GraphKind } from '../src/models/family.js';
import { TfExecutor } from '../src/infer/tf-executor.js';
import { codesTensor } from '../src/models/layers.js';
import { NUM_CODES } from '../src/util/codes.js';
import { codes, maxAbsDiff, ops, paramArrays } from './model-helpers.js';

export function anyParams(cfg: ModelConfig, seed = 3): ParamArrays {
  if (cfg.kind === 'transformer') return paramArrays(cfg, seed);
  const specs = paramSpecOf(cfg);
  const v = initParams(specs, seed, 0.2);
  return new Map(
    specs.map((s) => [
      s.name,
      {
        shape: s.shape,
        data: v.get(s.name)!.map((x, i) => x + (s.init === 'normal' ? 0 : 0.1 * Math.sin(i + s.name.length))),
      },
    ]),
  );
}

/** Reference log-probabilities [B][T][256] from the training code path (ctForward / wavenetForward) over B streams. */
export function referenceLogprobs(
  cfg: ModelConfig,
  params: ParamArrays,
  streams: Int32Array[],
  n: number,
): Float32Array[] {
  const B = streams.length;
  const T = streams[0].length;
  const p = new Map([...params].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const out = streams.map(() => new Float32Array(T * 256));
  let state = cfg.kind === 'wavenet' ? initialWavenetState(ops, cfg, B) : initialState(ops, cfg, B);
  for (let s = 0; s < T / n; s++) {
    const tokens = new Int32Array(B * n);
    for (let b = 0; b < B; b++) tokens.set(streams[b].subarray(s * n, (s + 1) * n), b * n);
    const r =
      cfg.kind === 'wavenet'
        ? wavenetForward(ops, cfg, p, codesTensor(ops, tokens, NUM_CODES), null, state as never)
        : ctForward(ops, { ...cfg, auxLoss: 'none' }, p, codesTensor(ops, tokens, NUM_CODES), null, state as never);
    const lp = tf.logSoftmax(r.logits).dataSync() as Float32Array;
    for (let b = 0; b < B; b++) out[b].set(lp.subarray(b * n * 256, (b + 1) * n * 256), s * n * 256);
    state = r.state;
  }
  return out;
}

export function tfGraphs(cfg: ModelConfig, params: ParamArrays, B: number, segmentLength: number): GenerationGraphs {
  const exec = (kind: GraphKind, length: number): GraphExecutor =>
    new TfExecutor(familyOf(cfg).graphBuilder(cfg, { kind, batch: B, length }), params);
  const g: GenerationGraphs = { segment: exec('segment', segmentLength), segmentLength, step: exec('step', 1) };
  if (cfg.kind === 'transformer') {
    g.roll = exec('roll', 1);
    g.keys = exec('keys', 1);
  }
  return g;
}

/**
 * Streams share a prompt, then diverge; the generator is primed on the prompt and stepped on each
 * row's own codes. Every step's log-probabilities must equal segment mode's at that position.
 */
export async function checkStepsMatchSegments(
  cfg: ModelConfig,
  graphs: GenerationGraphs,
  params: ParamArrays,
  B: number,
  T: number,
  promptLength: number,
  n: number,
  tol: number,
): Promise<number> {
  const prompt = codes(promptLength, 11);
  const streams = Array.from({ length: B }, (_, b) => {
    const s = codes(T, 20 + b);
    s.set(prompt);
    return s;
  });
  const ref = referenceLogprobs(cfg, params, streams, n);
  const gen = familyOf(cfg).generator(cfg, B, 'test', graphs);
  let worst = 0;
  let lp = await gen.prime(Uint8Array.from(prompt));
  for (let t = promptLength - 1; t < T - 1; t++) {
    for (let b = 0; b < B; b++) {
      const d = maxAbsDiff(lp.subarray(b * 256, (b + 1) * 256), ref[b].subarray(t * 256, (t + 1) * 256));
      worst = Math.max(worst, d);
      assert.ok(d <= tol, `${cfg.kind} position ${t} row ${b}: step differs from segment mode by ${d}`);
    }
    lp = await gen.step(Int32Array.from(streams, (s) => s[t + 1]));
  }
  await gen.dispose();
  return worst;
}
