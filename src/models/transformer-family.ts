/** The Compressive Transformer and Transformer-XL (n_cm = 0) as one model family. */
import type { Ops, Tensor } from '../engine/ops.js';
import { ctForward, type CtState, initialState, stateTensors } from './compressive.js';
import { ConfigError, parseTransformerConfig, PRESETS, type TransformerConfig } from './config.js';
import type { ModelFamily } from './family.js';
import { transformerFlopsPerSample } from './flops.js';
import { codesTensor } from './layers.js';
import { describeParams, transformerParamSpec } from './param-spec.js';
import { exportTensors, type SequenceModel } from './sequence-model.js';
import { TransformerGenerator, TransformerHostState } from './transformer-generator.js';
import { transformerGraph } from './transformer-graphs.js';
import { transformerTrainingGraph } from './transformer-training.js';
import { NUM_CODES } from '../util/codes.js';

const ms = (samples: number) => `${((samples / 16000) * 1000).toFixed(0)} ms at 16 kHz`;

function sequenceModel<T extends Tensor>(cfg: TransformerConfig): SequenceModel<T, CtState<T>> {
  return {
    initialState: (ops, batch) => initialState(ops, cfg, batch),
    stateTensors: (s) => stateTensors(s),
    forward: (ops, p, tokens, reset, state, opts) => {
      const x = codesTensor(ops, tokens, NUM_CODES);
      const out = ctForward(ops, cfg, p, x, reset, state, opts);
      return { logits: out.logits, state: out.state, aux: out.aux };
    },
    exportState: (ops, s) => ({
      batch: s.batch,
      tensors: exportTensors(ops, [...s.mem, ...s.cmem]),
      counters: [Array.from(s.memValid), Array.from(s.cmemValid)],
    }),
    importState: (ops: Ops<T>, e) => {
      const ts = e.tensors.map((t) => ops.constant(t.data, t.shape));
      const layers = ts.length / 2;
      return {
        batch: e.batch,
        mem: ts.slice(0, layers),
        cmem: ts.slice(layers),
        memValid: Int32Array.from(e.counters[0]),
        cmemValid: Int32Array.from(e.counters[1]),
      };
    },
  };
}

export const transformerFamily: ModelFamily<TransformerConfig> = {
  kind: 'transformer',
  presets: PRESETS,
  parse: parseTransformerConfig,
  name: (c) => (c.compressedMemory > 0 ? 'Compressive Transformer' : 'Transformer-XL'),
  describe: describeParams,
  details: (c) => {
    const flops = transformerFlopsPerSample(c);
    const compressed = c.compressedMemory
      ? `, compressed memory ${c.compressedMemory} (rate ${c.compressionRate}, ${c.compression}, aux loss ${c.auxLoss})`
      : '';
    const span = c.segment + c.memory + c.compressedMemory * c.compressionRate;
    return [
      `segment ${c.segment}, memory ${c.memory}${compressed}`,
      `attention span per layer: ${span} samples (${ms(span)})`,
      `${(flops.forward / 1e6).toFixed(2)} MFLOP per sample forward, ~${(flops.train / 1e6).toFixed(2)} training`,
    ];
  },
  paramSpec: transformerParamSpec,
  flopsPerSample: transformerFlopsPerSample,
  trainingWindows: (c) => ({ kind: 'streams', segment: c.segment }),
  sequenceModel,
  trainingGraph: (c, batch) => transformerTrainingGraph(c, batch),
  evalConfig: (cfg, asked) => {
    const memory = asked.memory ?? cfg.memory;
    const compressedMemory = asked.compressedMemory ?? cfg.compressedMemory;
    if (cfg.compressedMemory === 0 && compressedMemory > 0) {
      throw new ConfigError(
        `compressed memory ${compressedMemory} asked for a Transformer-XL (trained with compressedMemory 0): ` +
          'it has no trained compression network',
      );
    }
    // No auxiliary loss: it only trains f_c and would cost time at every segment.
    const out = parseTransformerConfig(
      { ...cfg, memory, compressedMemory, auxLoss: 'none' },
      'evaluation config (after --memory/--compressed-memory)',
    );
    const overridden = asked.memory !== undefined || asked.compressedMemory !== undefined;
    return {
      cfg: out,
      override: overridden
        ? { memory, compressedMemory, trainedMemory: cfg.memory, trainedCompressedMemory: cfg.compressedMemory }
        : undefined,
    };
  },
  scoreLength: (c) => c.segment,
  primeLength: (c) => c.segment,
  generationGraphs: () => ['segment', 'step', 'roll', 'keys'],
  // A block never crosses the memory roll at a segment's end.
  maxBlockSize: (c) => c.segment,
  graphBuilder: transformerGraph,
  hostState: (c, batch) => new TransformerHostState(c, batch),
  generator: (c, batch, engine, graphs) => new TransformerGenerator(c, batch, engine, graphs),
};
