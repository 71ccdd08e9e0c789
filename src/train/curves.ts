import fs from 'node:fs';
import path from 'node:path';
import { chartPng, chartSvg, type LineChart } from '../report/chart.js';
import { writeFileAtomic } from '../util/atomic.js';

export interface MetricLine {
  step: number;
  nll?: number;
  valid_nll?: number;
  /** training samples seen by this step */
  samples?: number;
  elapsed_s?: number;
  samples_per_s?: number;
}

/** Read metrics.jsonl, skipping a torn last line (a kill mid-append must not break the plot). */
export function readMetrics(file: string): MetricLine[] {
  if (!fs.existsSync(file)) return [];
  const out: MetricLine[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // partial line from an interrupted write
    }
  }
  return out;
}

/** The loss curves of a run: training NLL (smoothed), validation NLL, and the unigram bar to beat. */
export function curvesChart(metrics: MetricLine[], unigramNats: number | null, title: string): LineChart {
  const train = metrics.filter((m) => m.nll !== undefined && Number.isFinite(m.nll));
  const k = Math.max(1, Math.floor(train.length / 100));
  const smooth: [number, number][] = [];
  for (let i = 0; i < train.length; i++) {
    const lo = Math.max(0, i - k + 1);
    const w = train.slice(lo, i + 1);
    smooth.push([train[i].step, w.reduce((a, m) => a + (m.nll as number), 0) / w.length]);
  }
  const valid = metrics
    .filter((m) => m.valid_nll !== undefined)
    .map((m) => [m.step, m.valid_nll as number] as [number, number]);
  const lastStep = Math.max(1, ...metrics.map((m) => m.step));
  return {
    title,
    xLabel: 'step',
    yLabel: 'NLL (nats per sample)',
    series: [
      { name: k > 1 ? `train NLL (mean of ${k})` : 'train NLL', points: smooth, color: '#1f77b4' },
      { name: 'validation NLL', points: valid, color: '#ff7f0e' },
      ...(unigramNats === null
        ? []
        : [
            {
              name: `unigram entropy ${unigramNats.toFixed(3)}`,
              points: [
                [0, unigramNats],
                [lastStep, unigramNats],
              ] as [number, number][],
              color: '#7f7f7f',
              dashed: true,
            },
          ]),
    ],
  };
}

export function writeCurves(run: string, metricsFile: string, unigramNats: number): void {
  const chart = curvesChart(readMetrics(metricsFile), unigramNats, `training: ${path.basename(path.resolve(run))}`);
  writeFileAtomic(path.join(run, 'curves.svg'), chartSvg(chart));
  writeFileAtomic(path.join(run, 'curves.png'), chartPng(chart));
}
