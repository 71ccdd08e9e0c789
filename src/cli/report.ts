import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { modelName, paramSpecOf, parseModelConfig } from '../models/registry.js';
import { paramCount } from '../models/param-spec.js';
import { summarizeRun, type RunSummary } from '../report/run-summary.js';
import { writeReports } from '../report/write-reports.js';
import { UsageError } from './options.js';

/** The model and parameter count a report shows for a run's config.json. */
export function describeRunConfig(json: unknown): { model: string; params: string } {
  const c = parseModelConfig(json);
  return { model: modelName(c), params: `${(paramCount(paramSpecOf(c)) / 1e6).toFixed(2)}M` };
}

/** Run folders named <model>-seed<k> (as pipelines name them) are summarised as seeds of <model>. */
export function summarizeRunFolders(runs: string[]): RunSummary[] {
  const seen = new Map<string, string>();
  for (const run of runs) {
    const real = fs.existsSync(run) ? fs.realpathSync(run) : path.resolve(run);
    if (seen.has(real)) throw new UsageError(`${run} is given twice (as ${seen.get(real)} too): name each run once`);
    seen.set(real, run);
  }
  const summaries = runs.map((run) => {
    const config = path.join(run, 'config.json');
    if (!fs.existsSync(config))
      throw new UsageError(`${run} is not a run folder: it holds no config.json (train writes one)`);
    try {
      describeRunConfig(JSON.parse(fs.readFileSync(config, 'utf8')));
    } catch (e) {
      throw new UsageError(`${config} cannot be read as a model config: ${(e as Error).message}`);
    }
    const name = path.basename(path.resolve(run));
    const seeded = /^(.+)-seed(\d+)$/.exec(name);
    return summarizeRun(name, run, describeRunConfig, {
      group: seeded ? seeded[1] : name,
      seed: seeded ? Number(seeded[2]) : null,
    });
  });
  const pairs = new Set<string>();
  for (const r of summaries) {
    const key = `${r.group}\u0000${r.seed}`;
    if (r.seed !== null && pairs.has(key))
      console.warn(`report: two runs are seed ${r.seed} of ${r.group}; their spread is not a seed spread`);
    pairs.add(key);
  }
  return summaries;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .summary('write an HTML page and a Markdown report comparing trained runs')
    .description(
      'Summarise run folders in <out>/report.html (one page that opens offline: results table, ' +
        'interactive charts of validation and test NLL, attention by memory age, training curves, audio ' +
        'players with spectrograms for the prompt, the continuation and the real audio that followed ' +
        "the prompt, and each run's settings) and <out>/report.md (the same figures as PNGs). Audio " +
        'and spectrograms are copied under <out>/media, so the folder can be moved or shared whole. ' +
        'Folders named <model>-seed<k> are grouped as seeds of one model (mean ± sd, ranked only ' +
        'where the gap exceeds the seed noise). A run shows what it has: eval-test.json from ' +
        '`ctspeech eval --json`, generate.json from a pipeline generate step, attention.json from an ' +
        'attention step.',
    )
    .argument('<runs...>', 'run folders (each holds config.json, metrics.jsonl, ...)')
    .requiredOption('--out <dir>', 'folder to write report.html, report.md and media/ into')
    .option('--title <text>', 'the page title', 'ctspeech report')
    .option('--intro <text>', 'a paragraph shown under the title')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech report runs/quickstart/ct-small --out out/report\n' +
        '  ctspeech report runs/cmp/ct-seed0 runs/cmp/ct-seed1 runs/cmp/wavenet-seed0 --out out/cmp ' +
        '--title "CT vs WaveNet"',
    )
    .action(async (runs: string[], o: { out: string; title: string; intro?: string }) => {
      await runReport(runs, o);
    });
}

export async function runReport(runs: string[], o: { out: string; title: string; intro?: string }): Promise<string> {
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory())
    throw new UsageError(`--out ${o.out} is a file; name a folder (report.html and report.md are written into it)`);
  const summaries = summarizeRunFolders(runs);
  const html = await writeReports(path.join(o.out, 'report.md'), o.title, summaries, o.intro);
  console.log(`wrote ${path.join(o.out, 'report.md')}\nopen in a browser: ${path.resolve(html)}`);
  return html;
}
