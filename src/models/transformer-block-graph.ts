/**
 * The transformer's block graph: K positions of one segment per call, each drawing its code in the
 * graph and feeding it on. The segment caches are read as they were when the block began (slots
 * from the block's first position on are masked); the block's own keys and values reach its later
 * positions as `earlier` columns, so no cache is written inside the graph. The host writes the K
 * positions' keys, values and layer inputs into its caches after the call, as it does after K steps.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { blockSampler } from './block-sampling.js';
import { ctStepCore, type EarlierKeys } from './compressive-step.js';
import type { TransformerConfig } from './config.js';
import type { GraphBuilder, GraphSpec } from './family.js';
import { graphInput as inp, stackLayers } from './graph-inputs.js';
import type { Params } from './layers.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Inputs: `prev` [B, 256] log-probabilities before the block, `draws` [K, B, 2], `start` [K] (each
 * position's n - 1 - i), `mask` [B, 1, 1, M + n] over [memory keys; segment slots] as at the block's
 * first position, and the step graph's caches. Outputs: `codes` [K, B], the last `logprobs`, and
 * per position and layer `h` [K * L, B, d], `k` and `v` [K * L, B, H, dh].
 */
export function transformerBlockGraph(cfg: TransformerConfig, spec: GraphSpec): GraphBuilder {
  const { batch: B, length: K, sampling } = spec;
  if (!sampling) throw new Error('a block graph needs its sampling options');
  const { layers: L, heads: H, dHead: dh, memory: nm, compressedMemory: ncm, segment: n } = cfg;
  if (K > n) throw new Error(`a block of ${K} positions does not fit a segment of ${n}`);
  const M = nm + ncm;
  return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
    let logprobs = inp(ops, 'prev', [B, NUM_CODES]);
    const sampler = blockSampler(ops, B, K, sampling);
    const starts = inp(ops, 'start', [K]);
    const mask = inp(ops, 'mask', [B, 1, 1, M + n]);
    const cache = {
      memK: Array.from({ length: L }, (_, i) => inp(ops, `memK.${i}`, [B * H, M, dh])),
      memV: Array.from({ length: L }, (_, i) => inp(ops, `memV.${i}`, [B * H, M, dh])),
      segK: Array.from({ length: L }, (_, i) => inp(ops, `segK.${i}`, [B * H, n, dh])),
      segV: Array.from({ length: L }, (_, i) => inp(ops, `segV.${i}`, [B * H, n, dh])),
    };
    const ks: T[][] = Array.from({ length: L }, () => []);
    const vs: T[][] = Array.from({ length: L }, () => []);
    const out = { h: [] as T[], k: [] as T[], v: [] as T[] };
    for (let j = 0; j < K; j++) {
      const oneHot = sampler.draw(j, logprobs);
      // The block's earlier positions are never masked: each comes before this one in the segment.
      const open = ops.constant(new Float32Array(B * (j + 1)), [B, 1, 1, j + 1]);
      const earlier: EarlierKeys<T> | undefined = j
        ? { m: j, k: ks.map((x) => ops.concat(x, 1)), v: vs.map((x) => ops.concat(x, 1)) }
        : undefined;
      const start = ops.slice(starts, [j], [1]);
      const r = ctStepCore(ops, cfg, p, oneHot, start, ops.concat([mask, open], 3), cache, earlier);
      for (let l = 0; l < L; l++) {
        ks[l].push(ops.reshape(r.k[l], [B * H, 1, dh]));
        vs[l].push(ops.reshape(r.v[l], [B * H, 1, dh]));
      }
      out.h.push(stackLayers(ops, r.h));
      out.k.push(stackLayers(ops, r.k));
      out.v.push(stackLayers(ops, r.v));
      logprobs = ops.logSoftmax(r.logits);
    }
    return {
      codes: sampler.codes(),
      logprobs,
      h: ops.concat(out.h, 0),
      k: ops.concat(out.k, 0),
      v: ops.concat(out.v, 0),
    };
  };
}
