/** The transformer family's training graph (models/training-graph.ts): Algorithm 1 over one segment. */
import type { Feeds } from '../engine/executor.js';
import type { Ops, Tensor } from '../engine/ops.js';
import { advanceValidity, ctForward, dropoutMask, oldMemoriesValid, segmentMask } from './compressive.js';
import type { TransformerConfig } from './config.js';
import { graphInput } from './graph-inputs.js';
import type { Params } from './layers.js';
import { commonFeeds, commonInputs, nllOf, type TrainBatch, type TrainingGraph } from './training-graph.js';

export function transformerTrainingGraph(cfg: TransformerConfig, B: number): TrainingGraph {
  const { layers: Lc, dModel: d, memory: nm, compressedMemory: ncm, segment: n } = cfg;
  const K = ncm + nm + n;
  const withAux = ncm > 0 && cfg.auxLoss !== 'none';
  const memValid = new Int32Array(B);
  const cmemValid = new Int32Array(B);
  const stateShapes = [
    ...Array.from({ length: Lc }, () => [B, nm, d]),
    ...Array.from({ length: Lc }, () => [B, ncm, d]),
  ];
  return {
    stateShapes,
    build<T extends Tensor>(ops: Ops<T>, p: Params<T>) {
      const x = commonInputs(ops, B, n);
      const s = stateShapes.map((shape, i) => graphInput(ops, `s.${i}`, shape));
      const mask = graphInput(ops, 'mask', [B, 1, n, K]);
      const auxRows = withAux
        ? { mask: graphInput(ops, 'auxMask', [B, 1, 1]), invCount: graphInput(ops, 'auxInvCount', [1]) }
        : undefined;
      let drops = 0;
      const dropMask = cfg.dropout > 0 ? () => graphInput(ops, `drop.${drops++}`, [B, n, d]) : undefined;
      const state = { batch: B, mem: s.slice(0, Lc), cmem: s.slice(Lc), memValid, cmemValid };
      const out = ctForward(ops, cfg, p, x.tokens, null, state, { mask, keep: x.keep, auxRows, dropMask });
      const nll = nllOf(ops, out.logits, x);
      return {
        loss: out.aux ? ops.add(nll, out.aux) : nll,
        nll,
        aux: out.aux,
        state: [...out.state.mem, ...out.state.cmem],
      };
    },
    feeds(batch: TrainBatch, rng: { nextFloat(): number }): Feeds {
      const f = commonFeeds(batch, B);
      for (let b = 0; b < B; b++) if (batch.reset?.[b]) memValid[b] = cmemValid[b] = 0;
      f.mask = { data: segmentMask(cfg, B, n, memValid, cmemValid), shape: [B, 1, n, K] };
      if (withAux) {
        // As in ctForward: a row's old memories count once all of them are real history.
        const rows = Array.from({ length: B }, (_, b) => (oldMemoriesValid(cfg, n, memValid[b]) === n ? 1 : 0));
        const count = rows.reduce((a: number, r) => a + r, 0);
        f.auxMask = { data: Float32Array.from(rows), shape: [B, 1, 1] };
        f.auxInvCount = { data: Float32Array.of(count ? 1 / count : 0), shape: [1] };
      }
      if (cfg.dropout > 0) {
        // Drawn in ctForward's order (per layer: attention output, then feed-forward).
        for (let k = 0; k < 2 * Lc; k++)
          f[`drop.${k}`] = { data: dropoutMask(rng, cfg.dropout, B * n * d), shape: [B, n, d] };
      }
      advanceValidity(cfg, n, memValid, cmemValid);
      return f;
    },
    counters: () => [Array.from(memValid), Array.from(cmemValid)],
    setCounters: (c) => {
      memValid.set(c[0]);
      cmemValid.set(c[1]);
    },
  };
}
