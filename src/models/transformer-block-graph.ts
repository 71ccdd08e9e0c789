/**
 * The transformer's block graph: K positions of one segment per call, each drawing its code in the
 * graph and feeding it on. Position j runs the step graph's own arithmetic (`ctStepCore`) on the
 * caches as the per-sample path would hold them: the block writes each position's key and value
 * into its segment slot in the graph (cache + slot one-hot x key: exact, since the slot was zero),
 * so a block draws the codes one call per sample draws, bit for bit. The host still writes the K
 * positions' keys, values and layer inputs into its own caches after the call.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { blockSampler } from './block-sampling.js';
import { ctStepCore } from './compressive-step.js';
import type { TransformerConfig } from './config.js';
import type { GraphBuilder, GraphSpec } from './family.js';
import { graphInput as inp, stackLayers } from './graph-inputs.js';
import type { Params } from './layers.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Inputs: `prev` [B, 256] log-probabilities before the block, `draws` [K, B, 2], `start` [K] (each
 * position's n - 1 - i), `mask` [K, B, 1, 1, M + n + 1] (each position's step mask), `slot` [K, n]
 * (each position's segment slot, one-hot), and the step graph's caches. Outputs: `codes` [K, B],
 * the last `logprobs`, and per position and layer `h` [K * L, B, d], `k` and `v` [K * L, B, H, dh].
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
    const masks = inp(ops, 'mask', [K, B, 1, 1, M + n + 1]);
    const slots = inp(ops, 'slot', [K, n]);
    const memK = Array.from({ length: L }, (_, i) => inp(ops, `memK.${i}`, [B * H, M, dh]));
    const memV = Array.from({ length: L }, (_, i) => inp(ops, `memV.${i}`, [B * H, M, dh]));
    let segK = Array.from({ length: L }, (_, i) => inp(ops, `segK.${i}`, [B * H, n, dh]));
    let segV = Array.from({ length: L }, (_, i) => inp(ops, `segV.${i}`, [B * H, n, dh]));
    const out = { h: [] as T[], k: [] as T[], v: [] as T[] };
    for (let j = 0; j < K; j++) {
      const oneHot = sampler.draw(j, logprobs);
      const mask = ops.reshape(ops.slice(masks, [j, 0, 0, 0, 0], [1, B, 1, 1, M + n + 1]), [B, 1, 1, M + n + 1]);
      const start = ops.slice(starts, [j], [1]);
      const r = ctStepCore(ops, cfg, p, oneHot, start, mask, { memK, memV, segK, segV });
      out.h.push(stackLayers(ops, r.h));
      out.k.push(stackLayers(ops, r.k));
      out.v.push(stackLayers(ops, r.v));
      logprobs = ops.logSoftmax(r.logits);
      if (j + 1 < K) {
        const slot = ops.reshape(ops.slice(slots, [j, 0], [1, n]), [1, n, 1]);
        const write = (cache: T, x: T) => ops.add(cache, ops.mul(slot, ops.reshape(x, [B * H, 1, dh])));
        segK = segK.map((c, l) => write(c, r.k[l]));
        segV = segV.map((c, l) => write(c, r.v[l]));
      }
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
