import type { SplitStats } from '../data/stats.js';
import { chartPng, chartSvg, type LineChart } from './chart.js';

const COLORS: Record<string, string> = { train: '#1f77b4', valid: '#ff7f0e', test: '#2ca02c' };

/**
 * The code distribution of each split as probability per code on a log axis: mu-law speech piles
 * up around the silence code (128), and a linear axis would hide everything else.
 */
export function histogramChart(stats: SplitStats[], title: string): LineChart {
  return {
    title,
    xLabel: 'mu-law code (128 = silence)',
    yLabel: 'probability',
    yLog: true,
    xTicks: [0, 32, 64, 96, 128, 160, 192, 224, 255],
    series: stats
      .filter((s) => s.samples > 0)
      .map((s) => ({
        name: `${s.split}: ${s.entropyBits.toFixed(3)} bits, ${(s.hours * 60).toFixed(1)} min`,
        color: COLORS[s.split],
        points: s.histogram.map((c, q) => [q, c / s.samples] as [number, number]),
      })),
  };
}

/** Render by the file's extension: .png, otherwise SVG. */
export function renderHistogram(stats: SplitStats[], title: string, file: string): Uint8Array | string {
  const chart = histogramChart(stats, title);
  return file.toLowerCase().endsWith('.png') ? chartPng(chart) : chartSvg(chart);
}
