/**
 * WaveNet's inference graphs (docs/onnx.md): a segment of any length with each layer's history
 * carried (`hist.i`), and one step fed every layer's x[t-d] (`past`, [L * B, R]). Every input is declared here.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import type { GraphBuilder, GraphSpec } from './family.js';
import { blockSampler } from './block-sampling.js';
import { graphInput as inp } from './graph-inputs.js';
import type { Params } from './layers.js';
import { wavenetForward, wavenetStepCore } from './wavenet.js';
import { dilations, type WavenetConfig } from './wavenet-config.js';
import { NUM_CODES } from '../util/codes.js';

export function wavenetGraph(cfg: WavenetConfig, spec: GraphSpec): GraphBuilder {
  const R = cfg.residualChannels;
  const B = spec.batch;
  const dil = dilations(cfg);
  switch (spec.kind) {
    case 'segment':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const state = { batch: B, history: dil.map((d, i) => inp(ops, `hist.${i}`, [B, d, R])) };
        const tokens = inp(ops, 'tokens', [B * spec.length, NUM_CODES]);
        const r = wavenetForward(ops, cfg, p, tokens, null, state);
        const out: Record<string, T> = { logprobs: ops.logSoftmax(r.logits) };
        r.state.history.forEach((h, i) => (out[`out.hist.${i}`] = h));
        return out;
      };
    case 'step':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        // One input and one output for all layers: onnxruntime-node costs ~1 µs per input and ~4 µs per
        // output of a run, a tenth of a step at batch 1 when each layer had its own.
        const tokens = inp(ops, 'tokens', [B, NUM_CODES]);
        const pastAll = inp(ops, 'past', [dil.length * B, R]);
        const past = dil.map((_, i) => ops.slice(pastAll, [i * B, 0], [B, R]));
        const r = wavenetStepCore(ops, cfg, p, tokens, past);
        return { logprobs: ops.logSoftmax(r.logits), x: ops.concat(r.inputs, 0) };
      };
    case 'block':
      return blockGraph(cfg, spec);
    default:
      throw new Error(`a WaveNet has no ${spec.kind} graph`);
  }
}

/**
 * K samples in one call: each step draws its code from the previous step's log-probabilities
 * (Ops.sample, uniforms `draws` [K, B, 2] from the host's seeded generator) and feeds it on. Layer
 * i's x[t+j-d] comes from `past.i` [min(K, d), B, R] (the host's ring, oldest first) while j < d,
 * after that from this block's own step j - d. Outputs the codes [K, B] (-1: not sampleable), the
 * last log-probabilities, and every step's layer inputs [K * L, B, R] for the host's rings.
 */
function blockGraph(cfg: WavenetConfig, spec: GraphSpec): GraphBuilder {
  const { batch: B, length: K, sampling } = spec;
  if (!sampling) throw new Error('a block graph needs its sampling options');
  const R = cfg.residualChannels;
  const dil = dilations(cfg);
  return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
    let logprobs = inp(ops, 'prev', [B, NUM_CODES]);
    const sampler = blockSampler(ops, B, K, sampling);
    const fed = dil.map((d, i) => inp(ops, `past.${i}`, [Math.min(K, d), B, R]));
    const at = (x: T, j: number) => ops.reshape(ops.slice(x, [j, 0, 0], [1, B, R]), [B, R]);
    const made: T[][] = [];
    for (let j = 0; j < K; j++) {
      const oneHot = sampler.draw(j, logprobs);
      const past = dil.map((d, i) => (j < d ? at(fed[i], j) : made[j - d][i]));
      const r = wavenetStepCore(ops, cfg, p, oneHot, past);
      made.push(r.inputs);
      logprobs = ops.logSoftmax(r.logits);
    }
    return {
      codes: sampler.codes(),
      logprobs,
      x: ops.concat(made.flat(), 0), // [K * L * B, R]: step, then layer, then row
    };
  };
}
