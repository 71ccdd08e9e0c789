/**
 * What a report says, decided once: the tables, the ranking, the charts and the attention figures.
 * The Markdown and HTML writers only lay it out, so the two formats cannot disagree.
 */
import path from 'node:path';
import { curvesChart } from '../train/curves.js';
import { attentionChart } from '../infer/attention.js';
import type { LineChart } from './chart.js';
import { type Generation, LN2, type RunSummary } from './run-summary.js';
import {
  SPECTROGRAM_MAX_HZ,
  SPECTROGRAM_RANGE_DB,
  STFT_HOP_SECONDS,
  STFT_WINDOW_SECONDS,
} from '../audio/spectrogram.js';
import { formatSpread, rankByMean, rankingSentence, type Spread, spread } from './seed-stats.js';

export const UNFINISHED_NOTE =
  'stopped before their planned steps (a time limit, --stop-after or an interruption), so their NLL is ' +
  'not that of the planned experiment. Rerun the pipeline to continue them.';

/** How every spectrogram in a report is drawn, from the constants that draw it. */
export const SPECTROGRAM_NOTE =
  `Spectrograms: log magnitude, ${STFT_WINDOW_SECONDS * 1000} ms Hann windows every ${STFT_HOP_SECONDS * 1000} ms, ` +
  `0–${SPECTROGRAM_MAX_HZ / 1000} kHz, ${SPECTROGRAM_RANGE_DB} dB below the loudest bin.`;

/** The sentence under an attention section's heading. */
export function attentionNote(a: AttentionSection): string {
  const over = a.runs > 1 ? ` in ${a.runs} runs (mean over seeds)` : '';
  return (
    `Average attention weight per key slot over ${a.counted} (row, segment) pairs with full memories${over}, ` +
    'averaged over layers, heads and queries.'
  );
}

/** How a run's audio was generated: speed, engine, sampling and where the prompt came from. */
export function generationNote(g: Generation): string {
  const s = g.sampling;
  const drawn = [
    s.temperature !== undefined ? `temperature ${s.temperature}` : null,
    s.topK !== undefined ? `top-k ${s.topK}` : null,
    s.topP !== undefined ? `top-p ${s.topP}` : null,
    s.seed !== undefined ? `seed ${s.seed}` : null,
  ].filter((x) => x !== null);
  // An absolute path says where a file sat on someone's machine; its name is what a reader needs.
  const prompt = g.prompt && path.isAbsolute(g.prompt) ? path.basename(g.prompt) : g.prompt;
  return (
    `${Math.round(g.samplesPerSecond).toLocaleString('en-US')} samples/s, ` +
    `real-time factor ${g.realTimeFactor.toFixed(1)} (${g.engine})` +
    (drawn.length ? `; ${drawn.join(', ')}` : '') +
    (prompt
      ? `; prompt from ${prompt}${g.promptStart !== null ? ` starting at ${g.promptStart.toFixed(2)} s` : ''}`
      : '')
  );
}

/** The sentences both report formats print, in one place. */
export const NOTES = {
  attention: attentionNote,
  generation: generationNote,
  spectrogram: SPECTROGRAM_NOTE,
  unfinished: UNFINISHED_NOTE,
};

export interface Table {
  head: string[];
  /** per column: right-aligned (numbers) or not */
  right: boolean[];
  rows: string[][];
  /** columns holding paths or names, set in code type */
  code: number[];
}

export interface AttentionSection {
  group: string;
  counted: number;
  runs: number;
  table: Table;
  /** one chart per run whose attention.json holds the per-slot profile */
  charts: { run: RunSummary; chart: LineChart }[];
}

export interface ReportContent {
  title: string;
  intro: string | null;
  created: string;
  seeded: boolean;
  /** mean and spread per model, when some model has several seeds */
  seedTable: Table | null;
  runTable: Table;
  tableNote: string;
  /** names of runs that stopped before their planned steps */
  unfinishedRuns: string[];
  ranking: string | null;
  validChart: LineChart | null;
  testChart: LineChart | null;
  attention: AttentionSection[];
  runs: RunSummary[];
  /** per run, its training curves (train and validation NLL against steps) */
  curves: { run: RunSummary; chart: LineChart }[];
}

/** " (trained 120 of 300 steps)" for a run that stopped before its planned steps, else "". */
export function unfinished(r: RunSummary): string {
  return r.plannedSteps !== null && r.steps < r.plannedSteps
    ? ` (trained ${r.steps.toLocaleString('en-US')} of ${r.plannedSteps.toLocaleString('en-US')} steps)`
    : '';
}

function duration(s: number | null): string {
  if (s === null) return '–';
  if (s < 120) return `${s.toFixed(0)} s`;
  return s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
}

interface Group {
  name: string;
  runs: RunSummary[];
  test: Spread | null;
  valid: Spread | null;
}

function groupRuns(runs: RunSummary[]): Group[] {
  const names = [...new Set(runs.map((r) => r.group))];
  return names.map((name) => {
    const members = runs.filter((r) => r.group === name);
    const validBits = members.flatMap((r) => {
      const nats = r.valid?.nats ?? r.validNats;
      return nats === null ? [] : [nats / LN2];
    });
    return {
      name,
      runs: members,
      test: spread(members.flatMap((r) => (r.test ? [r.test.bits] : []))),
      valid: spread(validBits),
    };
  });
}

/**
 * The mean validation curve of a group's seeds: point k of every seed is its k-th validation (the
 * same step when the seeds share a schedule; the samples seen there can differ slightly, so x is
 * their mean too). Null when the seeds were validated a different number of times.
 */
function meanCurve(runs: RunSummary[]): [number, number][] | null {
  const curves = runs.map((r) => r.validCurve).filter((c) => c.length);
  if (!curves.length) return [];
  if (curves.some((c) => c.length !== curves[0].length)) return null;
  const mean = (k: number, i: 0 | 1) => curves.reduce((a, c) => a + c[k][i], 0) / curves.length;
  return curves[0].map((_, k) => [mean(k, 0), mean(k, 1)]);
}

const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? '–' : x.toFixed(d));

function tables(groups: Group[], runs: RunSummary[], rel: (p: string) => string, seeded: boolean) {
  const seedTable: Table | null = seeded
    ? {
        head: [
          'model',
          'runs',
          'seeds',
          'parameters',
          'test NLL (bits), mean ± sd (n, min–max)',
          'valid NLL (bits), mean ± sd',
          'unigram (bits)',
        ],
        right: [false, false, false, false, true, true, true],
        code: [1],
        rows: groups.map((g) => {
          const r0 = g.runs[0];
          const seeds = g.runs.map((r) => `${r.seed === null ? '–' : String(r.seed)}${unfinished(r)}`).join(', ');
          return [
            r0.model,
            g.name,
            seeds,
            r0.params,
            formatSpread(g.test),
            formatSpread(g.valid),
            f(r0.test?.unigramBits ?? r0.valid?.unigramBits, 3),
          ];
        }),
      }
    : null;
  const runTable: Table = {
    head: [
      'model',
      'run',
      'parameters',
      'samples trained',
      'wall time',
      'trained on',
      'valid NLL (nats)',
      'valid NLL (bits)',
      'test NLL (nats)',
      'test NLL (bits)',
      'unigram (bits)',
      'generation RTF',
    ],
    right: [false, false, false, true, true, false, true, true, true, true, true, true],
    code: [1],
    rows: runs.map((r) => {
      const validNats = r.valid?.nats ?? r.validNats;
      return [
        r.model,
        rel(r.run),
        r.params,
        `${r.samplesTrained.toLocaleString('en-US')}${unfinished(r)}`,
        duration(r.wallSeconds),
        r.trainedOn ?? '–',
        f(validNats),
        f(validNats === null ? null : validNats / LN2),
        f(r.test?.nats),
        f(r.test?.bits),
        f(r.test?.unigramBits ?? r.valid?.unigramBits, 3),
        f(r.generation?.realTimeFactor, 1),
      ];
    }),
  };
  return { seedTable, runTable };
}

function validChart(groups: Group[], runs: RunSummary[], seeded: boolean): LineChart | null {
  // A group whose seeds cannot be averaged is drawn seed by seed, and the title says so.
  let averaged = true;
  const curved = groups
    .flatMap((g) => {
      const mean = meanCurve(g.runs);
      if (mean) return [{ name: g.name, points: mean }];
      averaged = false;
      return g.runs.map((r) => ({ name: r.name, points: r.validCurve }));
    })
    .filter((c) => c.points.length);
  if (!curved.length) return null;
  const chart: LineChart = {
    title:
      seeded && averaged
        ? 'validation NLL against training samples (mean over seeds)'
        : 'validation NLL against training samples',
    xLabel: 'training samples',
    yLabel: 'bits per sample',
    series: curved.map((c) => ({ name: c.name, points: c.points })),
  };
  const unigram = runs.find((r) => r.test)?.test?.unigramBits;
  if (unigram !== undefined && curved.some((c) => c.points.length > 1)) {
    const xs = curved.flatMap((c) => c.points.map((p) => p[0]));
    chart.series.push({
      name: 'unigram (test)',
      points: [
        [Math.min(...xs), unigram],
        [Math.max(...xs), unigram],
      ],
      color: '#7f7f7f',
      dashed: true,
    });
  }
  return chart;
}

function attentionSections(groups: Group[]): AttentionSection[] {
  return groups.flatMap((g) => {
    const withAttention = g.runs.filter((r) => r.attention);
    if (!withAttention.length) return [];
    const first = withAttention[0].attention!;
    // Regions are the same slots in every seed of one model: average their figures.
    const regions = first.regions.map((reg, k) => ({
      ...reg,
      mass: withAttention.reduce((a, r) => a + r.attention!.regions[k].mass, 0) / withAttention.length,
      perSlot: withAttention.reduce((a, r) => a + r.attention!.regions[k].perSlot, 0) / withAttention.length,
    }));
    const memory = regions.find((x) => x.name === 'memory');
    const table: Table = {
      head: ['region', 'slots', 'attention mass', 'weight per slot', 'per slot vs memory'],
      right: [false, true, true, true, true],
      code: [],
      rows: regions.map((x) => [
        x.name,
        String(x.slots),
        `${(100 * x.mass).toFixed(1)}%`,
        x.perSlot.toExponential(2),
        memory && memory.perSlot > 0 ? (x.perSlot / memory.perSlot).toFixed(2) : '–',
      ]),
    };
    const charts = withAttention.map((run) => ({
      run,
      chart: attentionChart(run.attention!.profile, `attention by memory age: ${run.name}`),
    }));
    return [
      {
        group: g.name,
        counted: withAttention.reduce((a, r) => a + r.attention!.counted, 0),
        runs: withAttention.length,
        table,
        charts,
      },
    ];
  });
}

/** Everything a report shows; `rel` writes a run's path as the report's folder sees it. */
export function reportContent(
  title: string,
  runs: RunSummary[],
  rel: (p: string) => string,
  intro?: string,
): ReportContent {
  const groups = groupRuns(runs);
  const seeded = groups.some((g) => g.runs.length > 1);
  const short = runs.filter((r) => unfinished(r));
  const tested = groups.filter((g) => g.test);
  const ranked = rankByMean(tested.map((g) => ({ name: g.name, spread: g.test! })));
  const unigram = runs.find((r) => r.test)?.test?.unigramBits;
  return {
    title,
    intro: intro?.trim() || null,
    created: new Date().toISOString(),
    seeded,
    ...tables(groups, runs, rel, seeded),
    tableNote:
      'NLL is per 16 kHz mu-law sample, each file scored from empty memory; ' +
      'valid NLL is from the valid split evaluated after training when the pipeline did so, ' +
      'else the last in-training validation (middle windows of valid files). ' +
      'The unigram entropy is the NLL of a model that ignores context. ' +
      'Generation RTF = wall time / audio time at batch 1 (below 1 is faster than real time).',
    unfinishedRuns: short.map((r) => r.name),
    ranking: ranked && tested.length > 1 ? rankingSentence(ranked, seeded) : null,
    validChart: validChart(groups, runs, seeded),
    testChart:
      tested.length && unigram !== undefined
        ? {
            title: seeded ? 'test NLL per sample (bits), mean over seeds' : 'test NLL per sample (bits)',
            xLabel: 'model',
            yLabel: 'bits per sample',
            series: [],
            bars: [
              ...tested.map((g) => ({ label: g.name, value: g.test!.mean })),
              { label: 'unigram', value: unigram, color: '#7f7f7f' },
            ],
          }
        : null,
    attention: attentionSections(groups),
    runs,
    curves: runs.flatMap((r) => {
      if (!r.metrics.length) return [];
      const unigramBits = r.test?.unigramBits ?? r.valid?.unigramBits;
      return [{ run: r, chart: curvesChart(r.metrics, unigramBits === undefined ? null : unigramBits * LN2, r.name) }];
    }),
  };
}
