/** WaveNet (van den Oord et al. 2016), the paper's convolutional baseline, as a model family. */
import type { Ops, Tensor } from '../engine/ops.js';
import { ConfigError } from './config.js';
import type { ModelFamily } from './family.js';
import { wavenetFlopsPerSample } from './flops.js';
import { codesTensor } from './layers.js';
import { exportTensors, type SequenceModel } from './sequence-model.js';
import { initialWavenetState, wavenetForward, type WavenetState, wavenetStateTensors } from './wavenet.js';
import {
  describeWavenet,
  parseWavenetConfig,
  receptiveField,
  WAVENET_PRESETS,
  type WavenetConfig,
  wavenetParamSpec,
} from './wavenet-config.js';
import { WavenetGenerator, WavenetHostState } from './wavenet-generator.js';
import { wavenetGraph } from './wavenet-graphs.js';
import { wavenetTrainingGraph } from './wavenet-training.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Positions per segment-graph call when scoring: carried state makes any length exact, so this
 * trades cache footprint against calls; a power of two (>= 256) keeps the number of distinct
 * exported graphs small. 1,024 keeps a layer's activations at batch 8 (2.9 MB for wavenet-cpu) in
 * a 2-core machine's last-level cache: wavenet-cpu scored 60,000 samples/s at 1,024 and 44,000 at
 * 4,096 (BENCHMARKS.md).
 */
const SCORE_LENGTH = 1024;
/** Positions per segment-graph call when priming a generator on a prompt. */
const PRIME_LENGTH = 1024;

function sequenceModel<T extends Tensor>(cfg: WavenetConfig): SequenceModel<T, WavenetState<T>> {
  return {
    initialState: (ops, batch) => initialWavenetState(ops, cfg, batch),
    stateTensors: (s) => wavenetStateTensors(s),
    forward: (ops, p, tokens, reset, state) => {
      const x = codesTensor(ops, tokens, NUM_CODES);
      return { ...wavenetForward(ops, cfg, p, x, reset, state), aux: null };
    },
    exportState: (ops, s) => ({ batch: s.batch, tensors: exportTensors(ops, s.history), counters: [] }),
    importState: (ops: Ops<T>, e) => ({
      batch: e.batch,
      history: e.tensors.map((t) => ops.constant(t.data, t.shape)),
    }),
  };
}

export const wavenetFamily: ModelFamily<WavenetConfig> = {
  kind: 'wavenet',
  presets: WAVENET_PRESETS,
  parse: parseWavenetConfig,
  name: () => 'WaveNet',
  describe: describeWavenet,
  details: (c) => {
    const rf = receptiveField(c);
    const flops = wavenetFlopsPerSample(c);
    return [
      `receptive field ${rf} samples (${((rf / 16000) * 1000).toFixed(0)} ms at 16 kHz); ` +
        `training crops score ${c.segment} positions each`,
      `${(flops.forward / 1e6).toFixed(2)} MFLOP per sample forward, ~${(flops.train / 1e6).toFixed(2)} training`,
    ];
  },
  paramSpec: wavenetParamSpec,
  flopsPerSample: wavenetFlopsPerSample,
  trainingWindows: (c) => ({ kind: 'crops', receptiveField: receptiveField(c), targets: c.segment }),
  sequenceModel,
  trainingGraph: wavenetTrainingGraph,
  evalConfig: (cfg, asked) => {
    if (asked.memory !== undefined || asked.compressedMemory !== undefined)
      throw new ConfigError(
        'memory overrides apply to transformer models only; a WaveNet carries exactly its receptive field',
      );
    return { cfg };
  },
  scoreLength: (_c, typical, asked) =>
    Math.min(
      asked ?? SCORE_LENGTH,
      typical === undefined ? SCORE_LENGTH : Math.max(256, 2 ** Math.ceil(Math.log2(typical))),
    ),
  primeLength: () => PRIME_LENGTH,
  generationGraphs: () => ['segment', 'step'],
  maxBlockSize: () => 256,
  graphBuilder: wavenetGraph,
  hostState: (c, batch) => new WavenetHostState(c, batch),
  generator: (c, batch, engine, graphs) => new WavenetGenerator(c, batch, engine, graphs),
};
