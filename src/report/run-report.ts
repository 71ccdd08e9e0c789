import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chartPng, type LineChart } from './chart.js';

export interface RunSummary {
  name: string;
  run: string;
  model: string;
  params: string;
  steps: number;
  trainSamplesPerSecond: number | null;
  validNats: number | null;
  test: { split: string; nats: number; bits: number; samples: number; unigramBits: number; samplesPerSecond: number } | null;
}

/**
 * A Markdown report of an experiment: the NLL table, the comparison bar chart and each run's
 * loss curves, written next to the runs so relative links work.
 */
export function writeReport(out: string, title: string, runs: RunSummary[]): void {
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const rel = (p: string) => path.relative(dir, path.resolve(p)).split(path.sep).join('/');
  const lines: string[] = [`# ${title}`, '', `Generated ${new Date().toISOString()} by ctspeech.`, ''];
  lines.push('| model | run | parameters | steps | train samples/s | valid NLL (nats) | test NLL (nats) | test NLL (bits) | unigram (bits) | test samples |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? '–' : x.toFixed(d));
    lines.push(`| ${r.model} | \`${rel(r.run)}\` | ${r.params} | ${r.steps} | ${r.trainSamplesPerSecond ? Math.round(r.trainSamplesPerSecond).toLocaleString('en-US') : '–'} | ${f(r.validNats)} | ${f(r.test?.nats)} | ${f(r.test?.bits)} | ${f(r.test?.unigramBits)} | ${r.test?.samples ?? '–'} |`);
  }
  lines.push('', 'NLL is per 16 kHz mu-law sample, each test file scored from empty memory; the unigram entropy is the NLL of a model that ignores context.', '');
  const scored = runs.filter((r) => r.test);
  if (scored.length) {
    const chart: LineChart = {
      title: 'test NLL per sample (bits)',
      xLabel: 'model',
      yLabel: 'bits per sample',
      series: [],
      bars: [...scored.map((r) => ({ label: r.name, value: r.test!.bits })), { label: 'unigram', value: scored[0].test!.unigramBits, color: '#7f7f7f' }],
    };
    const png = path.join(dir, 'nll-comparison.png');
    writeFileAtomic(png, chartPng(chart));
    lines.push(`![test NLL comparison](${rel(png)})`, '');
  }
  for (const r of runs) {
    const curves = path.join(r.run, 'curves.png');
    if (fs.existsSync(curves)) lines.push(`## ${r.name}`, '', `![training curves of ${r.name}](${rel(curves)})`, '');
  }
  writeFileAtomic(out, lines.join('\n'));
}

/** What a run directory says about itself: config, steps, last validation, saved test evaluation. */
export function summarizeRun(name: string, run: string, describe: (cfg: unknown) => { model: string; params: string }): RunSummary {
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  const metrics = fs.existsSync(path.join(run, 'metrics.jsonl'))
    ? fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } })
    : [];
  const steps = metrics.filter((m) => m.nll !== undefined);
  const valid = metrics.filter((m) => m.valid_nll !== undefined);
  const evalFile = path.join(run, 'eval-test.json');
  const test = fs.existsSync(evalFile) ? JSON.parse(fs.readFileSync(evalFile, 'utf8')) : null;
  const d = describe(cfg);
  return {
    name,
    run,
    model: d.model,
    params: d.params,
    steps: steps.length ? steps[steps.length - 1].step : 0,
    trainSamplesPerSecond: steps.length ? steps[steps.length - 1].samples_per_s ?? null : null,
    validNats: valid.length ? valid[valid.length - 1].valid_nll : null,
    test: test ? { split: 'test', nats: test.nats, bits: test.bits, samples: test.totalSamples, unigramBits: test.unigramBits, samplesPerSecond: test.samplesPerSecond } : null,
  };
}
