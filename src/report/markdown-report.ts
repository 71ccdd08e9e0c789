/** The Markdown report: the report's content as text, its charts as PNGs beside it. */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chartPng } from './chart.js';
import { type ReportContent, type Table, UNFINISHED_NOTE } from './report-content.js';
import { mediaName, type RunMedia } from './report-media.js';

function markdownTable(t: Table): string[] {
  const cell = (s: string, k: number) => (t.code.includes(k) ? `\`${s}\`` : s).replace(/\|/g, '\\|');
  return [
    `| ${t.head.join(' | ')} |`,
    `|${t.right.map((r) => (r ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

/**
 * Writes `out` (Markdown) and its PNG charts: valid-nll.png and nll-comparison.png beside it,
 * attention and training curves under media/<run>/. `media` holds the audio already written.
 */
export function writeMarkdownReport(out: string, c: ReportContent, media: RunMedia[]): void {
  const dir = path.dirname(path.resolve(out));
  const png = (rel: string, chart: Parameters<typeof chartPng>[0]) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileAtomic(path.join(dir, rel), chartPng(chart));
    return rel;
  };
  const lines: string[] = [`# ${c.title}`, '', `Generated ${c.created} by ctspeech.`, ''];
  if (c.intro) lines.push(c.intro, '');
  if (c.seedTable) lines.push('## Test NLL over seeds', '', ...markdownTable(c.seedTable), '', '## Every run', '');
  lines.push(...markdownTable(c.runTable), '', c.tableNote, '');
  if (c.unfinishedRuns.length)
    lines.push(
      `**${c.unfinishedRuns.length} run(s) did not finish training** ` +
        `(${c.unfinishedRuns.map((n) => `\`${n}\``).join(', ')}): ${UNFINISHED_NOTE}`,
      '',
    );
  if (c.ranking) lines.push(c.ranking, '');
  if (c.validChart)
    lines.push(
      '## Validation NLL during training',
      '',
      `![validation NLL against training samples](${png('valid-nll.png', c.validChart)})`,
      '',
    );
  if (c.testChart) lines.push(`![test NLL comparison](${png('nll-comparison.png', c.testChart)})`, '');
  for (const a of c.attention) {
    const over = a.runs > 1 ? ` in ${a.runs} runs (mean over seeds)` : '';
    lines.push(
      `## Attention by memory age: ${a.group}`,
      '',
      `Average attention weight per key slot over ${a.counted} (row, segment) pairs with full memories${over}, ` +
        'averaged over layers, heads and queries.',
      '',
      ...markdownTable(a.table),
      '',
    );
    for (const { run, chart } of a.charts)
      lines.push(
        `![attention by memory age of ${run.name}](${png(`media/${mediaName(run.name)}/attention.png`, chart)})`,
        '',
      );
  }
  if (media.length) {
    lines.push(
      '## Generated continuations',
      '',
      'Each clip with its spectrogram (25 ms Hann windows, 10 ms hop, 0-8 kHz, 80 dB range).',
      '',
    );
    for (const m of media) {
      const g = m.run.generation!;
      lines.push(
        `### ${m.run.name}`,
        '',
        `${Math.round(g.samplesPerSecond).toLocaleString('en-US')} samples/s, ` +
          `real-time factor ${g.realTimeFactor.toFixed(1)} (${g.engine})` +
          (g.prompt
            ? `; prompt from ${g.prompt}${g.promptStart !== null ? ` at ${g.promptStart.toFixed(2)} s` : ''}`
            : ''),
        '',
      );
      for (const clip of m.clips)
        lines.push(
          `- [${clip.kind}.wav](${clip.wav}): ${clip.caption}, ${clip.seconds.toFixed(2)} s`,
          '',
          `  ![spectrogram of the ${clip.kind}](${clip.spectrogram})`,
          '',
        );
    }
  }
  for (const { run, chart } of c.curves)
    lines.push(
      `## ${run.name}: training curves`,
      '',
      `![training curves of ${run.name}](${png(`media/${mediaName(run.name)}/curves.png`, chart)})`,
      '',
    );
  writeFileAtomic(out, lines.join('\n'));
}
