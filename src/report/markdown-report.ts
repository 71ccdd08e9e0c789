/** The Markdown report: the report's content as text, its charts as PNGs beside it. */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chartPng, type LineChart } from './chart.js';
import { NOTES, type ReportContent, type Table } from './report-content.js';
import type { RunMedia } from './report-media.js';
import type { RunSummary } from './run-summary.js';

function markdownTable(t: Table): string[] {
  const cell = (s: string, k: number) => (t.code.includes(k) ? `\`${s}\`` : s).replace(/\|/g, '\\|');
  return [
    `| ${t.head.join(' | ')} |`,
    `|${t.right.map((r) => (r ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

/**
 * The report's charts as PNGs: valid-nll.png and nll-comparison.png in `dir`, each run's attention
 * and training curves in `mediaRoot`/<run.media>/ (the folder that becomes `dir`/media). Returns each
 * chart's link as the Markdown gives it.
 */
export function writeChartPngs(dir: string, mediaRoot: string, c: ReportContent): Map<LineChart, string> {
  const links = new Map<LineChart, string>();
  const write = (file: string, link: string, chart: LineChart) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, chartPng(chart));
    links.set(chart, link);
  };
  if (c.validChart) write(path.join(dir, 'valid-nll.png'), 'valid-nll.png', c.validChart);
  if (c.testChart) write(path.join(dir, 'nll-comparison.png'), 'nll-comparison.png', c.testChart);
  const perRun = (run: RunSummary, name: string, chart: LineChart) =>
    write(path.join(mediaRoot, run.media!, name), `media/${run.media}/${name}`, chart);
  for (const a of c.attention) for (const { run, chart } of a.charts) perRun(run, 'attention.png', chart);
  for (const { run, chart } of c.curves) perRun(run, 'curves.png', chart);
  return links;
}

/** Writes `out` (Markdown), linking the charts `writeChartPngs` wrote and the audio in `media`. */
export function writeMarkdownReport(
  out: string,
  c: ReportContent,
  media: RunMedia[],
  images: Map<LineChart, string>,
): void {
  const png = (chart: LineChart) => images.get(chart)!;
  const lines: string[] = [`# ${c.title}`, '', `Generated ${c.created} by ctspeech.`, ''];
  if (c.intro) lines.push(c.intro, '');
  if (c.seedTable) lines.push('## Test NLL over seeds', '', ...markdownTable(c.seedTable), '', '## Every run', '');
  lines.push(...markdownTable(c.runTable), '', c.tableNote, '');
  if (c.unfinishedRuns.length)
    lines.push(
      `**${c.unfinishedRuns.length} run(s) did not finish training** ` +
        `(${c.unfinishedRuns.map((n) => `\`${n}\``).join(', ')}): ${NOTES.unfinished}`,
      '',
    );
  if (c.ranking) lines.push(c.ranking, '');
  if (c.validChart)
    lines.push(
      '## Validation NLL during training',
      '',
      `![validation NLL against training samples](${png(c.validChart)})`,
      '',
    );
  if (c.testChart) lines.push(`![test NLL comparison](${png(c.testChart)})`, '');
  for (const a of c.attention) {
    lines.push(`## Attention by memory age: ${a.group}`, '', NOTES.attention(a), '', ...markdownTable(a.table), '');
    for (const { run, chart } of a.charts) lines.push(`![attention by memory age of ${run.name}](${png(chart)})`, '');
  }
  if (media.length) {
    lines.push('## Generated continuations', '', NOTES.spectrogram, '');
    for (const m of media) {
      lines.push(`### ${m.run.name}`, '', NOTES.generation(m.run.generation!), '');
      for (const clip of m.clips)
        lines.push(
          `- [${clip.kind}.wav](${clip.wav}): ${clip.caption}, ${clip.seconds.toFixed(2)} s`,
          '',
          `  ![spectrogram: ${clip.caption}](${clip.spectrogram})`,
          '',
        );
    }
  }
  for (const { run, chart } of c.curves)
    lines.push(`## ${run.name}: training curves`, '', `![training curves of ${run.name}](${png(chart)})`, '');
  writeFileAtomic(out, lines.join('\n'));
}
