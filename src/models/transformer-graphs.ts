/**
 * The Compressive Transformer's / Transformer-XL's inference graphs (docs/onnx.md). Every input a
 * graph takes is declared here, by name and shape, and passed into the model functions: these
 * names and shapes are the whole contract between the host and a graph.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { ctForward, type CtState, updateMemory } from './compressive.js';
import { ctStepCore, memoryKeys } from './compressive-step.js';
import { transformerBlockGraph } from './transformer-block-graph.js';
import type { TransformerConfig } from './config.js';
import type { GraphBuilder, GraphSpec } from './family.js';
import { graphInput as inp, stackLayers } from './graph-inputs.js';
import type { Params } from './layers.js';
import { NUM_CODES } from '../util/codes.js';

export function transformerGraph(cfg: TransformerConfig, spec: GraphSpec): GraphBuilder {
  if (cfg.compression === 'most-used' && cfg.compressedMemory > 0 && spec.kind === 'roll') {
    throw new Error(
      "most-used compression keeps the memories the segment's queries attended to most; generation's " +
        'one-sample steps do not add up that attention, so a most-used model cannot generate yet',
    );
  }
  const { layers: Lc, dModel: d, heads: H, dHead: dh, memory: nm, compressedMemory: ncm, segment: n } = cfg;
  const B = spec.batch;
  const M = nm + ncm;
  const memIn = <T extends Tensor>(ops: Ops<T>) =>
    Array.from({ length: Lc }, (_, i) => inp(ops, `mem.${i}`, [B, nm, d]));
  // A Transformer-XL has no compressed memory: its graphs have no such inputs.
  const cmemIn = <T extends Tensor>(ops: Ops<T>) =>
    Array.from({ length: Lc }, (_, i) =>
      ncm > 0 ? inp(ops, `cmem.${i}`, [B, ncm, d]) : ops.constant(new Float32Array(0), [B, 0, d]),
    );
  const keysOut = <T extends Tensor>(ops: Ops<T>, p: Params<T>, out: Record<string, T>, mem: T[], cmem: T[]) => {
    for (let i = 0; i < Lc; i++) {
      const kv = memoryKeys(ops, cfg, p, i, cmem[i], mem[i]);
      out[`memK.${i}`] = kv.k;
      out[`memV.${i}`] = kv.v;
    }
  };
  switch (spec.kind) {
    case 'segment':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const len = spec.length;
        const state: CtState<T> = {
          batch: B,
          mem: memIn(ops),
          cmem: cmemIn(ops),
          memValid: new Int32Array(B),
          cmemValid: new Int32Array(B),
        };
        const tokens = inp(ops, 'tokens', [B * len, NUM_CODES]);
        const mask = inp(ops, 'mask', [B, 1, len, M + len]);
        const r = ctForward(ops, { ...cfg, auxLoss: 'none' }, p, tokens, null, state, { mask });
        const out: Record<string, T> = { logprobs: ops.logSoftmax(r.logits) };
        for (let i = 0; i < Lc; i++) {
          out[`out.mem.${i}`] = r.state.mem[i];
          if (ncm > 0) out[`out.cmem.${i}`] = r.state.cmem[i];
        }
        return out;
      };
    case 'step':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const cache = {
          memK: Array.from({ length: Lc }, (_, i) => inp(ops, `memK.${i}`, [B * H, M, dh])),
          memV: Array.from({ length: Lc }, (_, i) => inp(ops, `memV.${i}`, [B * H, M, dh])),
          segK: Array.from({ length: Lc }, (_, i) => inp(ops, `segK.${i}`, [B * H, n, dh])),
          segV: Array.from({ length: Lc }, (_, i) => inp(ops, `segV.${i}`, [B * H, n, dh])),
        };
        const r = ctStepCore(
          ops,
          cfg,
          p,
          inp(ops, 'tokens', [B, NUM_CODES]),
          inp(ops, 'start', [1]),
          inp(ops, 'mask', [B, 1, 1, M + n + 1]),
          cache,
        );
        return {
          logprobs: ops.logSoftmax(r.logits),
          h: stackLayers(ops, r.h),
          k: stackLayers(ops, r.k),
          v: stackLayers(ops, r.v),
        };
      };
    case 'roll':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const mem = memIn(ops);
        const cmem = cmemIn(ops);
        const out: Record<string, T> = {};
        const nextMem: T[] = [];
        const nextCmem: T[] = [];
        for (let i = 0; i < Lc; i++) {
          const u = updateMemory(ops, cfg, p, i, mem[i], cmem[i], inp(ops, `seg.${i}`, [B, n, d]));
          nextMem.push(u.mem);
          nextCmem.push(u.cmem);
          out[`out.mem.${i}`] = u.mem;
          if (ncm > 0) out[`out.cmem.${i}`] = u.cmem;
        }
        keysOut(ops, p, out, nextMem, nextCmem);
        return out;
      };
    case 'keys':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const out: Record<string, T> = {};
        keysOut(ops, p, out, memIn(ops), cmemIn(ops));
        return out;
      };
    case 'block':
      return transformerBlockGraph(cfg, spec);
    default:
      throw new Error(`a transformer has no ${spec.kind} graph`);
  }
}
