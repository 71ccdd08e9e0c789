/** A report in both formats from one content: report.md with PNGs, report.html beside it, one media folder. */
import fs from 'node:fs';
import path from 'node:path';
import { writeHtmlReport } from './html-report.js';
import { writeMarkdownReport } from './markdown-report.js';
import { reportContent } from './report-content.js';
import { writeReportMedia } from './report-media.js';
import type { RunSummary } from './run-summary.js';

/** Writes `mdOut` and the .html of the same name; returns the HTML page's path. */
export async function writeReports(mdOut: string, title: string, runs: RunSummary[], intro?: string): Promise<string> {
  const dir = path.dirname(path.resolve(mdOut));
  fs.mkdirSync(dir, { recursive: true });
  // Media folders and chart files are named after runs: two runs of one name get distinct ones.
  const seen = new Map<string, number>();
  const named = runs.map((r) => {
    const n = (seen.get(r.name) ?? 0) + 1;
    seen.set(r.name, n);
    return n > 1 ? { ...r, name: `${r.name}-${n}` } : r;
  });
  const rel = (p: string) => path.relative(dir, path.resolve(p)).split(path.sep).join('/') || '.';
  const content = reportContent(title, named, rel, intro);
  const media = await writeReportMedia(dir, named);
  writeMarkdownReport(mdOut, content, media);
  const html = mdOut.replace(/\.(md|markdown)$/i, '') + '.html';
  writeHtmlReport(html, content, media);
  return html;
}
