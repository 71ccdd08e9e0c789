import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chartPng, type LineChart } from './chart.js';

export interface EvalFigures {
  nats: number;
  bits: number;
  samples: number;
  unigramBits: number;
  samplesPerSecond: number;
}

export interface RunSummary {
  name: string;
  run: string;
  model: string;
  params: string;
  steps: number;
  /** training samples seen (scored positions) */
  samplesTrained: number;
  /** training wall time over all sessions, when the run recorded it */
  wallSeconds: number | null;
  backend: string | null;
  trainSamplesPerSecond: number | null;
  validNats: number | null;
  /** validation NLL (bits) against training samples: the Figure 4 analogue */
  validCurve: [number, number][];
  test: EvalFigures | null;
  valid: EvalFigures | null;
  generation: { realTimeFactor: number; samplesPerSecond: number; file: string; engine: string } | null;
  attention: { regions: { name: string; slots: number; mass: number; perSlot: number }[]; counted: number; plot: string | null } | null;
}

const LN2 = Math.log(2);

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

function evalFigures(file: string): EvalFigures | null {
  const e = readJson<{ nats: number; bits: number; totalSamples: number; unigramBits: number; samplesPerSecond: number }>(file);
  return e ? { nats: e.nats, bits: e.bits, samples: e.totalSamples, unigramBits: e.unigramBits, samplesPerSecond: e.samplesPerSecond } : null;
}

/** What a run directory says about itself: config, metrics, saved evaluations, generation and attention analysis. */
export function summarizeRun(name: string, run: string, describe: (cfg: unknown) => { model: string; params: string }): RunSummary {
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  const metrics = fs.existsSync(path.join(run, 'metrics.jsonl'))
    ? fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } })
    : [];
  const steps = metrics.filter((m) => m.nll !== undefined);
  const valid = metrics.filter((m) => m.valid_nll !== undefined);
  // Older runs' validation lines carry no sample count: take it from the step line of the same step.
  const samplesAt = new Map<number, number>(steps.map((m) => [m.step, m.samples]));
  const last = steps.length ? steps[steps.length - 1] : null;
  const gen = readJson<{ realTimeFactor: number; samplesPerSecond: number; files: string[]; engine: string }>(path.join(run, 'generate.json'));
  const att = readJson<{ regions: { name: string; slots: number; mass: number; perSlot: number }[]; counted: number }>(path.join(run, 'attention.json'));
  const d = describe(cfg);
  return {
    name,
    run,
    model: d.model,
    params: d.params,
    steps: last ? last.step : 0,
    samplesTrained: last ? last.samples : 0,
    wallSeconds: last?.elapsed_s ?? null,
    backend: readJson<{ backend?: string }>(path.join(run, 'train.json'))?.backend ?? null,
    trainSamplesPerSecond: last ? last.samples_per_s ?? null : null,
    validNats: valid.length ? valid[valid.length - 1].valid_nll : null,
    validCurve: valid.flatMap((m) => {
      const s = m.samples ?? samplesAt.get(m.step);
      return s === undefined ? [] : [[s, m.valid_nll / LN2] as [number, number]];
    }),
    test: evalFigures(path.join(run, 'eval-test.json')),
    valid: evalFigures(path.join(run, 'eval-valid.json')),
    generation: gen && gen.files?.length ? { realTimeFactor: gen.realTimeFactor, samplesPerSecond: gen.samplesPerSecond, file: gen.files[0], engine: gen.engine } : null,
    attention: att ? { regions: att.regions, counted: att.counted, plot: fs.existsSync(path.join(run, 'attention.png')) ? path.join(run, 'attention.png') : null } : null,
  };
}

function duration(s: number | null): string {
  if (s === null) return '–';
  if (s < 120) return `${s.toFixed(0)} s`;
  return s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
}

/**
 * A Markdown report of an experiment, written next to the runs so relative links work: the table,
 * validation NLL against training samples (the paper's Figure 4 analogue), test NLL bars, the
 * Compressive Transformer's attention by memory age, generated audio and each run's curves.
 */
export function writeReport(out: string, title: string, runs: RunSummary[], intro?: string): void {
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const rel = (p: string) => path.relative(dir, path.resolve(p)).split(path.sep).join('/');
  const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? '–' : x.toFixed(d));
  const lines: string[] = [`# ${title}`, '', `Generated ${new Date().toISOString()} by ctspeech.`, ''];
  if (intro) lines.push(intro.trim(), '');
  lines.push('| model | run | parameters | samples trained | wall time | backend | valid NLL (nats) | valid NLL (bits) | test NLL (nats) | test NLL (bits) | unigram (bits) | generation RTF |');
  lines.push('|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const validNats = r.valid?.nats ?? r.validNats;
    lines.push(
      `| ${r.model} | \`${rel(r.run)}\` | ${r.params} | ${r.samplesTrained.toLocaleString('en-US')} | ${duration(r.wallSeconds)} | ${r.backend ?? '–'} | ${f(validNats)} | ${f(validNats === null ? null : validNats / LN2)} | ${f(r.test?.nats)} | ${f(r.test?.bits)} | ${f(r.test?.unigramBits ?? r.valid?.unigramBits, 3)} | ${f(r.generation?.realTimeFactor, 1)} |`,
    );
  }
  lines.push(
    '',
    'NLL is per 16 kHz mu-law sample, each file scored from empty memory; valid NLL is from the valid split evaluated after training when the pipeline did so, else the last in-training validation (middle windows of valid files). The unigram entropy is the NLL of a model that ignores context. Generation RTF = wall time / audio time at batch 1 (below 1 is faster than real time).',
    '',
  );
  const tested = runs.filter((r) => r.test).sort((a, b) => a.test!.bits - b.test!.bits);
  if (tested.length > 1) {
    const best = tested[0];
    const others = tested.slice(1).map((r) => `${r.name} +${(r.test!.bits - best.test!.bits).toFixed(3)} bits`).join(', ');
    lines.push(`**Lowest test NLL: ${best.name}** at ${best.test!.bits.toFixed(3)} bits per sample; ${others}.`, '');
  }
  const curved = runs.filter((r) => r.validCurve.length);
  if (curved.length) {
    const chart: LineChart = {
      title: 'validation NLL against training samples',
      xLabel: 'training samples',
      yLabel: 'bits per sample',
      series: curved.map((r) => ({ name: r.name, points: r.validCurve })),
    };
    const unigram = runs.find((r) => r.test)?.test?.unigramBits;
    if (unigram !== undefined && curved.some((r) => r.validCurve.length > 1)) {
      const xs = curved.flatMap((r) => r.validCurve.map((p) => p[0]));
      chart.series.push({ name: 'unigram (test)', points: [[Math.min(...xs), unigram], [Math.max(...xs), unigram]], color: '#7f7f7f', dashed: true });
    }
    const png = path.join(dir, 'valid-nll.png');
    writeFileAtomic(png, chartPng(chart));
    lines.push('## Validation NLL during training', '', `![validation NLL against training samples](${rel(png)})`, '');
  }
  if (tested.length) {
    const chart: LineChart = {
      title: 'test NLL per sample (bits)',
      xLabel: 'model',
      yLabel: 'bits per sample',
      series: [],
      bars: [...runs.filter((r) => r.test).map((r) => ({ label: r.name, value: r.test!.bits })), { label: 'unigram', value: tested[0].test!.unigramBits, color: '#7f7f7f' }],
    };
    const png = path.join(dir, 'nll-comparison.png');
    writeFileAtomic(png, chartPng(chart));
    lines.push(`![test NLL comparison](${rel(png)})`, '');
  }
  for (const r of runs.filter((x) => x.attention)) {
    const a = r.attention!;
    const memory = a.regions.find((g) => g.name === 'memory');
    lines.push(`## Attention by memory age: ${r.name}`, '', `Average attention weight per key slot over ${a.counted} (row, segment) pairs with full memories, averaged over layers, heads and queries.`, '');
    lines.push('| region | slots | attention mass | weight per slot | per slot vs memory |', '|---|---:|---:|---:|---:|');
    for (const g of a.regions) lines.push(`| ${g.name} | ${g.slots} | ${(100 * g.mass).toFixed(1)}% | ${g.perSlot.toExponential(2)} | ${memory && memory.perSlot > 0 ? (g.perSlot / memory.perSlot).toFixed(2) : '–'} |`);
    lines.push('');
    if (a.plot) lines.push(`![attention by memory age of ${r.name}](${rel(a.plot)})`, '');
  }
  const generated = runs.filter((r) => r.generation);
  if (generated.length) {
    lines.push('## Generated continuations', '');
    for (const r of generated) lines.push(`- ${r.name}: [${path.basename(r.generation!.file)}](${rel(r.generation!.file)}) — ${Math.round(r.generation!.samplesPerSecond).toLocaleString('en-US')} samples/s, real-time factor ${r.generation!.realTimeFactor.toFixed(1)} (${r.generation!.engine})`);
    lines.push('');
  }
  for (const r of runs) {
    const curves = path.join(r.run, 'curves.png');
    if (fs.existsSync(curves)) lines.push(`## ${r.name}: training curves`, '', `![training curves of ${r.name}](${rel(curves)})`, '');
  }
  writeFileAtomic(out, lines.join('\n'));
}
