/** WaveNet's training graph (models/training-graph.ts): a batch of crops, each from empty state. */
import type { Feeds } from '../engine/executor.js';
import type { Ops, Tensor } from '../engine/ops.js';
import { graphInput } from './graph-inputs.js';
import type { Params } from './layers.js';
import { commonFeeds, commonInputs, nllOf, type TrainBatch, type TrainingGraph } from './training-graph.js';
import { wavenetForward } from './wavenet.js';
import { dilations, type WavenetConfig } from './wavenet-config.js';

/** `length`: positions per row (the receptive field's context plus the scored targets). */
export function wavenetTrainingGraph(cfg: WavenetConfig, B: number, length: number): TrainingGraph {
  const stateShapes = dilations(cfg).map((d) => [B, d, cfg.residualChannels]);
  return {
    stateShapes,
    build<T extends Tensor>(ops: Ops<T>, p: Params<T>) {
      const x = commonInputs(ops, B, length);
      const history = stateShapes.map((shape, i) => graphInput(ops, `s.${i}`, shape));
      const out = wavenetForward(ops, cfg, p, x.tokens, null, { batch: B, history }, { keep: x.keep });
      const nll = nllOf(ops, out.logits, x);
      return { loss: nll, nll, aux: null, state: out.state.history };
    },
    feeds: (batch: TrainBatch): Feeds => commonFeeds(batch, B),
    counters: () => [],
    setCounters: () => {},
  };
}
