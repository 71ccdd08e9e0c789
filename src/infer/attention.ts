/**
 * The Compressive Transformer paper's attention analysis (Rae et al. 2020): does the model use its
 * old memories? For each key slot of [compressed memory; memory; segment] (oldest to newest), the
 * average attention weight a query gives it, per layer, measured only where every memory slot holds
 * real history. Transformer-XL (n_cm = 0) gets the same analysis without the compressed region.
 */
import * as tf from '@tensorflow/tfjs';
import { TfOps } from '../engine/tfjs-ops.js';
import { advanceValidity, ctForward, type CtState, initialState, stateTensors } from '../models/compressive.js';
import { parseTransformerConfig, type TransformerConfig } from '../models/config.js';
import { codesTensor } from '../models/layers.js';
import type { ParamArrays } from '../models/model-files.js';
import { type LineChart, PALETTE, type Series } from '../report/chart.js';
import { NUM_CODES } from '../util/codes.js';
import { FileRows } from './file-rows.js';

export type RegionName = 'compressed memory' | 'memory' | 'segment';

export interface RegionStat {
  name: RegionName;
  slots: number;
  /** total attention weight on the region; sums to ~1 over the regions */
  mass: number;
  /** mass / slots */
  perSlot: number;
}

export interface AttentionProfile {
  layers: number;
  slots: { compressed: number; memory: number; segment: number };
  /** counted (row, segment) pairs: segments whose memories were completely full */
  counted: number;
  /** [layer][slot] mean weight; slot 0 = oldest compressed memory ... K-1 = newest segment position */
  perLayer: number[][];
  /** per slot, mean over layers */
  mean: number[];
  /** averaged over layers; a region with 0 slots (Transformer-XL's compressed memory) is omitted */
  regions: RegionStat[];
  regionsPerLayer: RegionStat[][];
}

export interface AttentionOptions {
  /** stop after this many counted (row, segment) pairs (default 64) */
  maxSegments?: number;
  /** files run in parallel rows (default 8) */
  batch?: number;
}

/**
 * How many segments after a reset pass before every memory and compressed-memory slot holds real
 * history (the index of the first segment the analysis counts), by the model's own validity rule.
 */
export function segmentsToFill(cfg: TransformerConfig): number {
  const mv = new Int32Array(1),
    cv = new Int32Array(1);
  let s = 0;
  // Terminates for any valid config: memory fills in ceil(n_m / n) segments,
  // then each segment adds n / c compressed slots.
  while (mv[0] < cfg.memory || cv[0] < cfg.compressedMemory) {
    advanceValidity(cfg, cfg.segment, mv, cv);
    s++;
  }
  return s;
}

export async function attentionByAge(
  cfg: TransformerConfig,
  params: ParamArrays,
  files: { path: string; codes: Uint8Array }[],
  opts: AttentionOptions = {},
): Promise<AttentionProfile> {
  if (cfg.memory === 0 && cfg.compressedMemory === 0) {
    throw new Error(
      'attention analysis needs memory: the config has memory 0 and compressedMemory 0, ' +
        'so every key is in the current segment',
    );
  }
  // The auxiliary loss only trains f_c and would cost time at every segment.
  const run = parseTransformerConfig({ ...cfg, auxLoss: 'none' }, 'attention analysis config');
  const maxSegments = opts.maxSegments ?? 64;
  if (!Number.isInteger(maxSegments) || maxSegments < 1)
    throw new RangeError(`maxSegments must be an integer >= 1, got ${maxSegments}`);
  if (files.length === 0) throw new RangeError('attention analysis: no files');
  const { segment: n, memory: nm, compressedMemory: ncm, layers: L } = run;
  const K = ncm + nm + n;
  const B = Math.max(1, Math.min(opts.batch ?? 8, files.length));

  const ops = new TfOps();
  const p = new Map([...params].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  let state: CtState<tf.Tensor> = initialState(ops, run, B);
  const sums = Array.from({ length: L }, () => new Float64Array(K));
  // Only whole segments are fed: a file's tail shorter than n could never be counted (memories
  // reset at the next file), and padded queries would dilute the per-slot averages.
  const rows = new FileRows(
    files.map((f) => f.codes),
    files.map((f) => f.codes.length),
    B,
    n,
    { whole: true },
  );
  let counted = 0;
  try {
    for (let call = rows.next(); call && counted < maxSegments; call = rows.next()) {
      const { tokens, reset } = call;
      // Validity before this segment decides; a row just reset has empty memories and never counts.
      const use: number[] = [];
      for (const { row: b, fresh } of call.placed)
        if (!fresh && state.memValid[b] === nm && state.cmemValid[b] === ncm && counted + use.length < maxSegments)
          use.push(b);
      let next!: CtState<tf.Tensor>;
      const means = tf.tidy(() => {
        const x = codesTensor(ops, tokens, NUM_CODES);
        const out = ctForward(ops, run, p, x, reset, state, { keepProbs: true });
        next = out.state;
        for (const t of stateTensors(next)) tf.keep(t);
        // probs [B, H, n, K] -> mean over heads and queries -> [B, K]; stacked over layers [L, B, K].
        return tf.stack(out.probs!.map((pr) => tf.mean(pr, [1, 2])));
      });
      const data = use.length ? ops.read(means) : null;
      means.dispose();
      // Tensors carried unchanged (Transformer-XL's empty compressed memory) stay alive.
      const live = new Set(stateTensors(next));
      for (const t of stateTensors(state)) if (!live.has(t)) t.dispose();
      state = next;
      if (!data) continue;
      for (let l = 0; l < L; l++) {
        for (const b of use) {
          const at = (l * B + b) * K;
          for (let k = 0; k < K; k++) sums[l][k] += data[at + k];
        }
      }
      counted += use.length;
    }
  } finally {
    for (const t of stateTensors(state)) t.dispose();
    for (const t of p.values()) t.dispose();
  }
  if (counted === 0) {
    const need = (segmentsToFill(run) + 1) * n;
    const longest = Math.max(...files.map((f) => f.codes.length));
    throw new RangeError(
      `attention analysis: no segment with full memories; a file needs at least ${need} codes ` +
        `(${segmentsToFill(run)} segments of ${n} fill memory ${nm} and compressed memory ${ncm}), ` +
        `the longest has ${longest}`,
    );
  }

  // Queries are causal within the segment (query i sees segment slots <= i), and a masked key gets
  // weight 0 from that query: the average is over all n queries, so segment slot j is weighted by
  // only n - j of them and the newest slots look less attended. Expected, not a finding; memory
  // slots are seen by every query, so memory and compressed memory compare fairly with each other.
  const perLayer = sums.map((s) => Array.from(s, (v) => v / counted));
  const mean = Array.from({ length: K }, (_, k) => perLayer.reduce((a, row) => a + row[k], 0) / L);
  const spans: [RegionName, number, number][] = [
    ['compressed memory', 0, ncm],
    ['memory', ncm, ncm + nm],
    ['segment', ncm + nm, K],
  ];
  const regionsOf = (w: number[]): RegionStat[] =>
    spans
      .filter(([, a, b]) => b > a)
      .map(([name, a, b]) => {
        const mass = w.slice(a, b).reduce((x, y) => x + y, 0);
        return { name, slots: b - a, mass, perSlot: mass / (b - a) };
      });
  const regionsPerLayer = perLayer.map(regionsOf);
  const regions = regionsPerLayer[0].map((r, i) => {
    const mass = regionsPerLayer.reduce((a, rs) => a + rs[i].mass, 0) / L;
    return { name: r.name, slots: r.slots, mass, perSlot: mass / r.slots };
  });
  return {
    layers: L,
    slots: { compressed: ncm, memory: nm, segment: n },
    counted,
    perLayer,
    mean,
    regions,
    regionsPerLayer,
  };
}

/**
 * Mean weight per key slot, oldest to newest. The x axis is the slot index, not an age in samples:
 * a compressed slot summarises c samples and a memory slot one, so an age axis would stretch the
 * compressed region c-fold while its per-slot weights stay per slot. Ticks mark the region starts.
 */
export function attentionChart(p: AttentionProfile, title: string): LineChart {
  const { compressed: ncm, memory: nm, segment: n } = p.slots;
  const K = ncm + nm + n;
  const line = (w: number[]) => w.map((v, k) => [k, v] as [number, number]);
  const series: Series[] = [
    { name: `mean of ${p.layers} layer${p.layers > 1 ? 's' : ''}`, points: line(p.mean), color: PALETTE[0] },
  ];
  // At most 4 layers drawn, spread from first to last, so the legend stays readable.
  const shown =
    p.layers <= 4
      ? [...Array(p.layers).keys()]
      : [...new Set([0, 1, 2, 3].map((i) => Math.round((i * (p.layers - 1)) / 3)))];
  if (p.layers > 1)
    shown.forEach((l, i) =>
      series.push({
        name: `layer ${l + 1}`,
        points: line(p.perLayer[l]),
        color: PALETTE[(i + 1) % PALETTE.length],
        dashed: true,
      }),
    );
  const parts = [
    ...(ncm ? [`compressed 0-${ncm - 1}`] : []),
    `memory ${ncm}-${ncm + nm - 1}`,
    `segment ${ncm + nm}-${K - 1}`,
  ];
  const xLabel = `key slot, oldest to newest: ${parts.join(' | ')}`;
  return {
    title,
    xLabel,
    // The label carries the region ranges; widen rather than let it run off the image (13 px DejaVu
    // Sans averages under 8 px a character).
    width: Math.max(900, xLabel.length * 8 + 160),
    yLabel: 'mean attention weight',
    series,
    xTicks: [...new Set([0, ...(ncm ? [ncm] : []), ncm + nm, K - 1])],
  };
}

const num = (v: number) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4));

/** Region table: how much attention each region gets, and per slot relative to plain memory. */
export function attentionMarkdown(p: AttentionProfile): string {
  const memory = p.regions.find((r) => r.name === 'memory')!;
  const lines = [
    '| region | slots | attention mass | mean weight per slot | per slot vs memory |',
    '|---|---:|---:|---:|---:|',
    ...p.regions.map(
      (r) =>
        `| ${r.name} | ${r.slots} | ${num(r.mass)} | ${num(r.perSlot)} | ${(r.perSlot / memory.perSlot).toFixed(2)}x |`,
    ),
  ];
  const note =
    `Mean over ${p.layers} layer${p.layers > 1 ? 's' : ''} and ${p.counted} (row, segment) pairs with full memories, ` +
    'heads and queries averaged; segment slots are seen only by the queries at or after them (causal).';
  return `${lines.join('\n')}\n\n${note}\n`;
}
