/** A report in both formats from one content: report.md with PNGs, report.html beside it, one media folder. */
import fs from 'node:fs';
import path from 'node:path';
import { writeHtmlReport } from './html-report.js';
import { writeChartPngs, writeMarkdownReport } from './markdown-report.js';
import { reportContent } from './report-content.js';
import { mediaName, writeReportMedia } from './report-media.js';
import type { RunSummary } from './run-summary.js';
import { posixRelative } from '../util/paths.js';
import { processAlive } from '../util/processes.js';

/** Each run's folder under media/: its name made safe, then -2, -3 ... until unused (case aside). */
function withMediaFolders(runs: RunSummary[]): RunSummary[] {
  const used = new Set<string>();
  return runs.map((r) => {
    const base = mediaName(r.name);
    let slug = base;
    for (let k = 2; used.has(slug.toLowerCase()); k++) slug = `${base}-${k}`;
    used.add(slug.toLowerCase());
    return { ...r, media: slug };
  });
}

/** Staging folders a killed report left behind (media.tmp-<pid>, media.old-<pid>). */
function sweepStaging(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    const m = /^media\.(tmp|old)-(\d+)$/.exec(f);
    if (m && !processAlive(Number(m[2]))) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}

/**
 * Writes `mdOut` and the .html of the same name; returns the HTML page's path. Audio, spectrograms
 * and per-run charts are built in a staging folder that replaces media/ whole once complete, so a
 * rerun leaves no files of an earlier report and an interrupted one leaves the last report intact.
 */
export async function writeReports(mdOut: string, title: string, runs: RunSummary[], intro?: string): Promise<string> {
  const dir = path.dirname(path.resolve(mdOut));
  fs.mkdirSync(dir, { recursive: true });
  sweepStaging(dir);
  const named = withMediaFolders(runs);
  const content = reportContent(title, named, (p) => posixRelative(dir, p) || '.', intro);
  const stage = path.join(dir, `media.tmp-${process.pid}`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage);
  const media = await writeReportMedia(stage, named);
  const images = writeChartPngs(dir, stage, content);
  const live = path.join(dir, 'media');
  const old = path.join(dir, `media.old-${process.pid}`);
  if (fs.existsSync(live)) fs.renameSync(live, old);
  fs.renameSync(stage, live);
  fs.rmSync(old, { recursive: true, force: true });
  writeMarkdownReport(mdOut, content, media, images);
  const html = mdOut.replace(/\.(md|markdown)$/i, '') + '.html';
  writeHtmlReport(html, content, media);
  return html;
}
