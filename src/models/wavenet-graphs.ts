/**
 * WaveNet's inference graphs (docs/onnx.md): a segment of any length with each layer's history
 * carried (`hist.i`), and one step fed each layer's x[t-d] (`past.i`). Every input is declared here.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import type { GraphBuilder, GraphSpec } from './family.js';
import { graphInput as inp, stackLayers } from './graph-inputs.js';
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
        const tokens = inp(ops, 'tokens', [B, NUM_CODES]);
        const past = dil.map((_, i) => inp(ops, `past.${i}`, [B, R]));
        const r = wavenetStepCore(ops, cfg, p, tokens, past);
        return { logprobs: ops.logSoftmax(r.logits), x: stackLayers(ops, r.inputs) };
      };
    default:
      throw new Error(`a WaveNet has no ${spec.kind} graph`);
  }
}
