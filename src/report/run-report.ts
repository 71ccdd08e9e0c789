import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chartPng, type LineChart } from './chart.js';
import { formatSpread, rankByMean, rankingSentence, type Spread, spread } from './seed-stats.js';

export interface EvalFigures {
  nats: number;
  bits: number;
  samples: number;
  unigramBits: number;
  samplesPerSecond: number;
}

export interface RunSummary {
  name: string;
  /** the model this run is one seed of (the run's own name when the report has no seeds) */
  group: string;
  seed: number | null;
  run: string;
  model: string;
  params: string;
  steps: number;
  /** the steps training was planned for (train.json); more than `steps` when it stopped early */
  plannedSteps: number | null;
  /** training samples seen (scored positions) */
  samplesTrained: number;
  /** training wall time over all sessions, when the run recorded it */
  wallSeconds: number | null;
  /** what trained it: `onnxruntime`, or `tfjs-<backend>` for the tfjs engine (or runs from before engines) */
  trainedOn: string | null;
  trainSamplesPerSecond: number | null;
  validNats: number | null;
  /** validation NLL (bits) against training samples: the Figure 4 analogue */
  validCurve: [number, number][];
  test: EvalFigures | null;
  valid: EvalFigures | null;
  generation: { realTimeFactor: number; samplesPerSecond: number; file: string; engine: string } | null;
  attention: {
    regions: { name: string; slots: number; mass: number; perSlot: number }[];
    counted: number;
    plot: string | null;
  } | null;
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
  const e = readJson<{
    nats: number;
    bits: number;
    totalSamples: number;
    unigramBits: number;
    samplesPerSecond: number;
  }>(file);
  return e
    ? {
        nats: e.nats,
        bits: e.bits,
        samples: e.totalSamples,
        unigramBits: e.unigramBits,
        samplesPerSecond: e.samplesPerSecond,
      }
    : null;
}

// train.json's `backend` is tfjs's backend, loaded in every process; it trained only when the engine was tfjs.
function trainedOn(train: { backend?: unknown; engine?: unknown } | null): string | null {
  if (train?.engine === 'onnxruntime') return 'onnxruntime';
  return typeof train?.backend === 'string' ? `tfjs-${train.backend}` : null;
}

/** What a run directory says about itself: config, metrics, saved evaluations, generation and attention analysis. */
export function summarizeRun(
  name: string,
  run: string,
  describe: (cfg: unknown) => { model: string; params: string },
  of: { group: string; seed: number | null } = { group: name, seed: null },
): RunSummary {
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  const metrics = fs.existsSync(path.join(run, 'metrics.jsonl'))
    ? fs
        .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .flatMap((l) => {
          try {
            return [JSON.parse(l)];
          } catch {
            return [];
          }
        })
    : [];
  const steps = metrics.filter((m) => m.nll !== undefined);
  const valid = metrics.filter((m) => m.valid_nll !== undefined);
  // Older runs' validation lines carry no sample count: take it from the step line of the same step.
  const samplesAt = new Map<number, number>(steps.map((m) => [m.step, m.samples]));
  const last = steps.length ? steps[steps.length - 1] : null;
  const gen = readJson<{ realTimeFactor: number; samplesPerSecond: number; files: string[]; engine: string }>(
    path.join(run, 'generate.json'),
  );
  const att = readJson<{ regions: { name: string; slots: number; mass: number; perSlot: number }[]; counted: number }>(
    path.join(run, 'attention.json'),
  );
  const d = describe(cfg);
  const train = readJson<{ backend?: unknown; engine?: unknown; steps?: unknown }>(path.join(run, 'train.json'));
  return {
    name,
    group: of.group,
    seed: of.seed,
    run,
    model: d.model,
    params: d.params,
    steps: last ? last.step : 0,
    plannedSteps: typeof train?.steps === 'number' && Number.isFinite(train.steps) ? train.steps : null,
    samplesTrained: last ? last.samples : 0,
    wallSeconds: last?.elapsed_s ?? null,
    trainedOn: trainedOn(train),
    trainSamplesPerSecond: last ? (last.samples_per_s ?? null) : null,
    validNats: valid.length ? valid[valid.length - 1].valid_nll : null,
    validCurve: valid.flatMap((m) => {
      const s = m.samples ?? samplesAt.get(m.step);
      return s === undefined ? [] : [[s, m.valid_nll / LN2] as [number, number]];
    }),
    test: evalFigures(path.join(run, 'eval-test.json')),
    valid: evalFigures(path.join(run, 'eval-valid.json')),
    generation:
      gen && gen.files?.length
        ? {
            realTimeFactor: gen.realTimeFactor,
            samplesPerSecond: gen.samplesPerSecond,
            file: generatedFile(run, gen.files[0]),
            engine: gen.engine,
          }
        : null,
    attention: att
      ? {
          regions: att.regions,
          counted: att.counted,
          plot: fs.existsSync(path.join(run, 'attention.png')) ? path.join(run, 'attention.png') : null,
        }
      : null,
  };
}

/** generate.json names its files relative to the run folder (older ones: to the folder it ran in). */
function generatedFile(run: string, file: string): string {
  if (path.isAbsolute(file)) return file;
  const inRun = path.join(run, file);
  return fs.existsSync(inRun) || !fs.existsSync(file) ? inRun : file;
}

/** " (trained 120 of 300 steps)" for a run that stopped before its planned steps, else "". */
function unfinished(r: RunSummary): string {
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

/**
 * A Markdown report of an experiment, written next to the runs so relative links work: the table,
 * validation NLL against training samples (the paper's Figure 4 analogue), test NLL bars, the
 * Compressive Transformer's attention by memory age, generated audio and each run's curves. Runs
 * that are seeds of one model are summarised as a mean and spread, and ranked only where the gap
 * exceeds the seed noise.
 */
export function writeReport(out: string, title: string, runs: RunSummary[], intro?: string): void {
  const dir = path.dirname(path.resolve(out));
  fs.mkdirSync(dir, { recursive: true });
  const rel = (p: string) => path.relative(dir, path.resolve(p)).split(path.sep).join('/');
  const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? '–' : x.toFixed(d));
  const groups = groupRuns(runs);
  const seeded = groups.some((g) => g.runs.length > 1);
  const lines: string[] = [`# ${title}`, '', `Generated ${new Date().toISOString()} by ctspeech.`, ''];
  if (intro) lines.push(intro.trim(), '');
  if (seeded) {
    lines.push('## Test NLL over seeds', '');
    lines.push(
      '| model | runs | seeds | parameters | test NLL (bits), mean ± sd (n, min–max) | ' +
        'valid NLL (bits), mean ± sd | unigram (bits) |',
    );
    lines.push('|---|---|---|---|---:|---:|---:|');
    for (const g of groups) {
      const r0 = g.runs[0];
      const seeds = g.runs.map((r) => `${r.seed === null ? '–' : String(r.seed)}${unfinished(r)}`).join(', ');
      lines.push(
        `| ${r0.model} | \`${g.name}\` | ${seeds} | ${r0.params} | ${formatSpread(g.test)} | ` +
          `${formatSpread(g.valid)} | ${f(r0.test?.unigramBits ?? r0.valid?.unigramBits, 3)} |`,
      );
    }
    lines.push('', '## Every run', '');
  }
  lines.push(
    '| model | run | parameters | samples trained | wall time | trained on | ' +
      'valid NLL (nats) | valid NLL (bits) | test NLL (nats) | test NLL (bits) | unigram (bits) | generation RTF |',
  );
  lines.push('|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const validNats = r.valid?.nats ?? r.validNats;
    lines.push(
      `| ${r.model} | \`${rel(r.run)}\` | ${r.params} | ` +
        `${r.samplesTrained.toLocaleString('en-US')}${unfinished(r)} | ` +
        `${duration(r.wallSeconds)} | ${r.trainedOn ?? '–'} | ` +
        `${f(validNats)} | ${f(validNats === null ? null : validNats / LN2)} | ` +
        `${f(r.test?.nats)} | ${f(r.test?.bits)} | ${f(r.test?.unigramBits ?? r.valid?.unigramBits, 3)} | ` +
        `${f(r.generation?.realTimeFactor, 1)} |`,
    );
  }
  lines.push(
    '',
    'NLL is per 16 kHz mu-law sample, each file scored from empty memory; ' +
      'valid NLL is from the valid split evaluated after training when the pipeline did so, ' +
      'else the last in-training validation (middle windows of valid files). ' +
      'The unigram entropy is the NLL of a model that ignores context. ' +
      'Generation RTF = wall time / audio time at batch 1 (below 1 is faster than real time).',
    '',
  );
  const short = runs.filter((r) => unfinished(r));
  if (short.length)
    lines.push(
      `**${short.length} run(s) did not finish training** (${short.map((r) => `\`${r.name}\``).join(', ')}): ` +
        'stopped before their planned steps (a time limit, --stop-after or an interruption), so their NLL is ' +
        'not that of the planned experiment. Rerun the pipeline to continue them.',
      '',
    );
  const tested = groups.filter((g) => g.test);
  const ranking = rankByMean(tested.map((g) => ({ name: g.name, spread: g.test! })));
  if (ranking && tested.length > 1) lines.push(rankingSentence(ranking, seeded), '');
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
  if (curved.length) {
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
    const png = path.join(dir, 'valid-nll.png');
    writeFileAtomic(png, chartPng(chart));
    lines.push('## Validation NLL during training', '', `![validation NLL against training samples](${rel(png)})`, '');
  }
  if (tested.length) {
    const unigram = runs.find((r) => r.test)!.test!.unigramBits;
    const chart: LineChart = {
      title: seeded ? 'test NLL per sample (bits), mean over seeds' : 'test NLL per sample (bits)',
      xLabel: 'model',
      yLabel: 'bits per sample',
      series: [],
      bars: [
        ...tested.map((g) => ({ label: g.name, value: g.test!.mean })),
        { label: 'unigram', value: unigram, color: '#7f7f7f' },
      ],
    };
    const png = path.join(dir, 'nll-comparison.png');
    writeFileAtomic(png, chartPng(chart));
    lines.push(`![test NLL comparison](${rel(png)})`, '');
  }
  for (const g of groups) {
    const withAttention = g.runs.filter((r) => r.attention);
    if (!withAttention.length) continue;
    const first = withAttention[0].attention!;
    // Regions are the same slots in every seed of one model: average their figures.
    const regions = first.regions.map((reg, k) => ({
      ...reg,
      mass: withAttention.reduce((a, r) => a + r.attention!.regions[k].mass, 0) / withAttention.length,
      perSlot: withAttention.reduce((a, r) => a + r.attention!.regions[k].perSlot, 0) / withAttention.length,
    }));
    const counted = withAttention.reduce((a, r) => a + r.attention!.counted, 0);
    const memory = regions.find((x) => x.name === 'memory');
    const over = withAttention.length > 1 ? ` in ${withAttention.length} runs (mean over seeds)` : '';
    lines.push(
      `## Attention by memory age: ${g.name}`,
      '',
      `Average attention weight per key slot over ${counted} (row, segment) pairs with full memories${over}, ` +
        'averaged over layers, heads and queries.',
      '',
    );
    lines.push(
      '| region | slots | attention mass | weight per slot | per slot vs memory |',
      '|---|---:|---:|---:|---:|',
    );
    for (const x of regions)
      lines.push(
        `| ${x.name} | ${x.slots} | ${(100 * x.mass).toFixed(1)}% | ${x.perSlot.toExponential(2)} | ` +
          `${memory && memory.perSlot > 0 ? (x.perSlot / memory.perSlot).toFixed(2) : '–'} |`,
      );
    lines.push('');
    for (const r of withAttention)
      if (r.attention!.plot) lines.push(`![attention by memory age of ${r.name}](${rel(r.attention!.plot)})`, '');
  }
  const generated = runs.filter((r) => r.generation);
  if (generated.length) {
    lines.push('## Generated continuations', '');
    for (const r of generated)
      lines.push(
        `- ${r.name}: [${path.basename(r.generation!.file)}](${rel(r.generation!.file)}) — ` +
          `${Math.round(r.generation!.samplesPerSecond).toLocaleString('en-US')} samples/s, ` +
          `real-time factor ${r.generation!.realTimeFactor.toFixed(1)} (${r.generation!.engine})`,
      );
    lines.push('');
  }
  for (const r of runs) {
    const curves = path.join(r.run, 'curves.png');
    if (fs.existsSync(curves))
      lines.push(`## ${r.name}: training curves`, '', `![training curves of ${r.name}](${rel(curves)})`, '');
  }
  writeFileAtomic(out, lines.join('\n'));
}
