/**
 * The inference graphs every engine runs (docs/onnx.md), each a function of the model code
 * over `Ops`: named inputs come from `ops.input`, named outputs are returned. The ONNX tracer turns
 * a builder into a .onnx file; the tfjs executor runs the same builder eagerly on the same feeds.
 * So the input/output names and shapes below are the whole contract between host and graph.
 */
import type { Ops, Tensor } from '../engine/ops.js';
import { ctForward, type CtState, updateMemory } from '../models/compressive.js';
import { ctStepCore, memoryKeys } from '../models/compressive-step.js';
import type { TransformerConfig } from '../models/config.js';
import type { Params } from '../models/layers.js';
import type { ModelConfig } from '../models/registry.js';
import { wavenetForward, wavenetStepCore } from '../models/wavenet.js';
import { dilations, type WavenetConfig } from '../models/wavenet-config.js';
import { NUM_CODES } from '../util/codes.js';

export type GraphKind = 'segment' | 'step' | 'roll' | 'keys';

/** What a graph is built for: its kind, batch rows and (segment graphs) positions per call. */
export interface GraphSpec {
  kind: GraphKind;
  batch: number;
  /** positions per call: the transformer's segment, any length for WaveNet; 1 for step graphs */
  length: number;
}

export type GraphBuilder = <T extends Tensor>(ops: Ops<T>, p: Params<T>) => Record<string, T>;

const zeros = (shape: readonly number[]) => new Float32Array(shape.reduce((a, v) => a * v, 1));

function inp<T extends Tensor>(ops: Ops<T>, name: string, shape: readonly number[]): T {
  return ops.input(name, zeros(shape), shape);
}

/** Stacks per-layer [B, ...] tensors into one [L, B, ...] output: one transfer instead of L. */
function stack<T extends Tensor>(ops: Ops<T>, xs: T[]): T {
  return ops.concat(
    xs.map((x) => ops.reshape(x, [1, ...x.shape])),
    0,
  );
}

function transformerBuilder(cfg: TransformerConfig, spec: GraphSpec): GraphBuilder {
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
        const state: CtState<T> = {
          batch: B,
          mem: memIn(ops),
          cmem: cmemIn(ops),
          memValid: new Int32Array(B),
          cmemValid: new Int32Array(B),
        };
        // Tokens and mask reach the graph through ops.input inside ctForward ('tokens', 'mask').
        const r = ctForward(ops, { ...cfg, auxLoss: 'none' }, p, new Int32Array(B * spec.length), null, state);
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
        return { logprobs: ops.logSoftmax(r.logits), h: stack(ops, r.h), k: stack(ops, r.k), v: stack(ops, r.v) };
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
  }
}

function wavenetBuilder(cfg: WavenetConfig, spec: GraphSpec): GraphBuilder {
  const R = cfg.residualChannels;
  const B = spec.batch;
  const dil = dilations(cfg);
  switch (spec.kind) {
    case 'segment':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const state = { batch: B, hist: dil.map((d, i) => inp(ops, `hist.${i}`, [B, d, R])) };
        const r = wavenetForward(ops, cfg, p, new Int32Array(B * spec.length), null, state);
        const out: Record<string, T> = { logprobs: ops.logSoftmax(r.logits) };
        r.state.hist.forEach((h, i) => (out[`out.hist.${i}`] = h));
        return out;
      };
    case 'step':
      return <T extends Tensor>(ops: Ops<T>, p: Params<T>) => {
        const r = wavenetStepCore(
          ops,
          cfg,
          p,
          inp(ops, 'tokens', [B, NUM_CODES]),
          dil.map((_, i) => inp(ops, `past.${i}`, [B, R])),
        );
        return { logprobs: ops.logSoftmax(r.logits), x: stack(ops, r.inputs) };
      };
    default:
      throw new Error(`a WaveNet has no ${spec.kind} graph`);
  }
}

/** The builder of one graph. Most-used compression selects memories by data and cannot be traced. */
export function graphBuilder(cfg: ModelConfig, spec: GraphSpec): GraphBuilder {
  if (cfg.kind === 'wavenet') return wavenetBuilder(cfg, spec);
  if (cfg.compression === 'most-used' && cfg.compressedMemory > 0 && spec.kind !== 'keys') {
    throw new Error(
      'most-used compression picks memories by their attention at run time, which a static graph cannot express: evaluate it with --engine tfjs',
    );
  }
  return transformerBuilder(cfg, spec);
}

/** The graphs generation needs for a model. */
export function generationGraphs(cfg: ModelConfig): GraphKind[] {
  return cfg.kind === 'wavenet' ? ['segment', 'step'] : ['segment', 'step', 'roll', 'keys'];
}
