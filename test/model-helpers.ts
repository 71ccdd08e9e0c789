import * as tf from '@tensorflow/tfjs';
import { TfOps } from '../src/engine/tfjs-ops.js';
import { type TransformerConfig, preset } from '../src/models/config.js';
import type { Params } from '../src/models/layers.js';
import { initParams, transformerParamSpec } from '../src/models/param-spec.js';

export const ops = new TfOps();

export function tinyConfig(over: Partial<TransformerConfig> = {}): TransformerConfig {
  return { ...preset('ct-tiny'), ...over } as TransformerConfig;
}

/** Seeded parameters as plain arrays, with a larger scale than training init so effects are visible. */
export function paramArrays(
  cfg: TransformerConfig,
  seed = 1,
  std = 0.2,
): Map<string, { shape: number[]; data: Float32Array }> {
  const specs = transformerParamSpec(cfg);
  const values = initParams(specs, seed, std);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const s of specs) {
    let data = values.get(s.name)!;
    // Non-zero biases u, v and layer-norm offsets so every parameter matters in the checks.
    if (s.init !== 'normal') data = data.map((v, i) => v + std * Math.sin(1 + i * 0.7 + s.name.length));
    out.set(s.name, { shape: s.shape, data });
  }
  return out;
}

export function constParams(arrays: Map<string, { shape: number[]; data: Float32Array }>): Params<tf.Tensor> {
  return new Map([...arrays].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
}

/** Deterministic pseudo-random codes. */
export function codes(n: number, seed = 7): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return a.length === b.length ? m : Infinity;
}
