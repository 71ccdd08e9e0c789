import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readManifest } from '../data/manifest.js';
import { corpusStats, type SplitStats } from '../data/stats.js';
import { renderHistogram } from '../report/histogram.js';
import { formatHours, formatTable } from '../report/table.js';
import { writeFileAtomic } from '../util/atomic.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .summary('per-split hours, file counts and code entropy of a prepared corpus')
    .description(
      'Report each split of a corpus: files, hours, samples, and the unigram entropy of its mu-law codes ' +
        'in nats and bits per sample. The entropy is the NLL of a model that ignores context: any model ' +
        'worth training must beat it. Also writes a plot of the code distribution.',
    )
    .argument('<corpus>', 'a folder made by `ctspeech prepare`')
    .option(
      '--plot <file>',
      'where to write the code histogram (.svg or .png; default <corpus>/code-histogram.svg and .png)',
      '',
    )
    .option('--no-plot', 'do not write the plot')
    .option('--json', 'print the statistics as JSON')
    .action((corpus: string, o: { plot: string | false; json?: boolean }) => {
      runInfo(corpus, { plot: o.plot === false ? null : o.plot || undefined, json: o.json });
    });
}

export function runInfo(
  corpus: string,
  { plot, json = false }: { plot?: string | null; json?: boolean } = {},
): SplitStats[] {
  const m = readManifest(corpus);
  const stats = corpusStats(corpus, m);
  const plots =
    plot === null
      ? []
      : plot
        ? [plot]
        : [path.join(corpus, 'code-histogram.svg'), path.join(corpus, 'code-histogram.png')];
  for (const p of plots) {
    fs.mkdirSync(path.dirname(path.resolve(p)), { recursive: true });
    writeFileAtomic(p, renderHistogram(stats, `mu-law code distribution: ${path.basename(path.resolve(corpus))}`, p));
  }
  if (json) {
    console.log(
      JSON.stringify({ corpus, sampleRate: m.settings.sampleRate, splits: stats, skipped: m.skipped, plots }, null, 2),
    );
    return stats;
  }
  const total = stats.reduce(
    (a, s) => ({ files: a.files + s.files, samples: a.samples + s.samples, hours: a.hours + s.hours }),
    { files: 0, samples: 0, hours: 0 },
  );
  console.log(`Corpus ${corpus}: ${m.settings.sampleRate} Hz, mu-law mu=${m.settings.mu}, prepared ${m.createdAt}`);
  console.log(
    formatTable(
      ['split', 'files', 'duration', 'hours', 'samples', 'entropy (nats)', 'entropy (bits)'],
      [
        ...stats.map((s) => [
          s.split,
          s.files,
          formatHours(s.hours),
          s.hours.toFixed(4),
          s.samples,
          s.entropyNats.toFixed(4),
          s.entropyBits.toFixed(4),
        ]),
        ['total', total.files, formatHours(total.hours), total.hours.toFixed(4), total.samples, '', ''],
      ],
    ),
  );
  console.log('Unigram entropy = NLL per sample of a context-free model: the bar a trained model must beat.');
  if (m.skipped.length)
    console.log(`${m.skipped.length} file(s) were skipped at prepare time (see manifest.json "skipped").`);
  if (plots.length) console.log(`Code histogram: ${plots.join(', ')}`);
  return stats;
}
