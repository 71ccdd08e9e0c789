/**
 * The HTML report: one page that opens from disk with nothing fetched from outside its folder.
 * ECharts is inlined and draws the same chart options as the PNGs, interactive (hover values,
 * zoom); audio and spectrograms are files under media/.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { writeFileAtomic } from '../util/atomic.js';
import { chartOption, DEFAULT_HEIGHT, DEFAULT_WIDTH, type LineChart, pow10Label, reviveFormatters } from './chart.js';
import { NOTES, type ReportContent, type Table } from './report-content.js';
import type { RunMedia } from './report-media.js';
import { machineDescription } from '../util/machine.js';

const require = createRequire(import.meta.url);
/** ECharts' "common" build: line and bar charts, legend, tooltip, zoom and graphics; 0.7 MB. */
const ECHARTS_JS = require.resolve('echarts/dist/echarts.common.min.js');

export const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Text that may carry Markdown's **bold** (the ranking sentence) as HTML. */
const withBold = (s: string) => esc(s).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>');

function htmlTable(t: Table): string {
  const cls = (k: number) => (t.right[k] ? ' class="num"' : '');
  const cell = (s: string, k: number) => `<td${cls(k)}>${t.code.includes(k) ? `<code>${esc(s)}</code>` : esc(s)}</td>`;
  return (
    '<table>\n<thead><tr>' +
    t.head.map((h, k) => `<th${cls(k)}>${esc(h)}</th>`).join('') +
    '</tr></thead>\n<tbody>\n' +
    t.rows.map((row) => `<tr>${row.map(cell).join('')}</tr>`).join('\n') +
    '\n</tbody>\n</table>'
  );
}

/** Charts of one page, each a div and its option as JSON the page script hands to ECharts. */
class Charts {
  readonly options: string[] = [];
  div(chart: LineChart): string {
    const id = `chart-${this.options.length}`;
    // '<' escaped so no value can close the script element the option sits in.
    const json = JSON.stringify(chartOption(chart)).replace(/</g, '\\u003c');
    this.options.push(`<script type="application/json" id="${id}-option">${json}</script>`);
    const h = chart.height ?? DEFAULT_HEIGHT;
    const w = chart.width ?? DEFAULT_WIDTH;
    const style = `max-width:${w}px;height:${h}px`;
    return `<div class="chart" id="${id}" style="${style}" aria-label="${esc(chart.title)}"></div>`;
  }
}

const PAGE_SCRIPT = `
${pow10Label.toString()}
${reviveFormatters.toString()}
for (const el of document.querySelectorAll('.chart')) {
  try {
    const option = reviveFormatters(JSON.parse(document.getElementById(el.id + '-option').textContent));
    const chart = echarts.init(el, null, { renderer: 'svg' });
    chart.setOption(option);
    addEventListener('resize', () => chart.resize());
    el.dataset.rendered = 'yes';
  } catch (e) {
    el.dataset.rendered = 'error';
    el.textContent = 'This chart failed to draw: ' + e;
  }
}`;

const STYLE = `
body { font-family: 'DejaVu Sans', system-ui, sans-serif; color: #222; margin: 0 auto; max-width: 1180px;
  padding: 1rem 1.5rem 3rem; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart { width: 100%; margin: .8rem 0; }
.note { color: #555; font-size: .9rem; } .warn { background: #fff4e0; padding: .5rem .8rem; }
.clips { display: flex; flex-wrap: wrap; gap: 1rem; }
.clip { margin: 0; flex: 1 1 340px; border: 1px solid #ddd; border-radius: 6px; padding: .6rem; }
.clip img { width: 100%; height: auto; display: block; margin-top: .4rem; }
.clip audio { width: 100%; }
details { margin: .4rem 0; } summary { cursor: pointer; }`;

function settings(r: ReportContent['runs'][number]): string {
  const rows = (o: Record<string, unknown>) =>
    Object.entries(o)
      .filter(([k]) => k !== 'machine')
      .map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  const keyValues = (o: Record<string, unknown>) =>
    htmlTable({ head: ['key', 'value'], right: [false, false], code: [], rows: rows(o) });
  const machine = r.settings?.machine;
  return (
    `<details><summary><code>${esc(r.name)}</code>: ${esc(r.model)}, ${esc(r.params)} parameters</summary>\n` +
    `<h4>Model (config.json)</h4>\n${keyValues(r.config)}\n` +
    (r.settings
      ? `<h4>Training (train.json)</h4>\n${keyValues(r.settings)}`
      : '<p class="note">No train.json: training settings not recorded.</p>') +
    `\n<p class="note">Trained on: ${esc(
      typeof machine === 'string' ? machine : 'machine not recorded (a run from before ctspeech recorded it)',
    )}</p></details>`
  );
}

/** Writes the page to `out`; its media (written by writeReportMedia) sit under the same folder. */
export function writeHtmlReport(out: string, c: ReportContent, media: RunMedia[]): void {
  const charts = new Charts();
  const body: string[] = [`<h1>${esc(c.title)}</h1>`, `<p class="note">Generated ${esc(c.created)} by ctspeech.</p>`];
  if (c.intro) body.push(...c.intro.split(/\n\s*\n/).map((p) => `<p>${esc(p)}</p>`));
  body.push('<h2 id="results">Results</h2>');
  if (c.seedTable) body.push('<h3>Test NLL over seeds</h3>', htmlTable(c.seedTable), '<h3>Every run</h3>');
  body.push(htmlTable(c.runTable), `<p class="note">${esc(c.tableNote)}</p>`);
  if (c.unfinishedRuns.length)
    body.push(
      `<p class="warn"><strong>${c.unfinishedRuns.length} run(s) did not finish training</strong> ` +
        `(${c.unfinishedRuns.map((n) => `<code>${esc(n)}</code>`).join(', ')}): ${esc(NOTES.unfinished)}</p>`,
    );
  if (c.ranking) body.push(`<p>${withBold(c.ranking)}</p>`);
  if (c.validChart || c.testChart) body.push('<h2 id="nll">NLL</h2>');
  if (c.validChart) body.push(charts.div(c.validChart));
  if (c.testChart) body.push(charts.div(c.testChart));
  for (const a of c.attention) {
    body.push(
      `<h2>Attention by memory age: ${esc(a.group)}</h2>`,
      `<p class="note">${esc(NOTES.attention(a))}</p>`,
      htmlTable(a.table),
      ...a.charts.map((x) => charts.div(x.chart)),
    );
  }
  if (media.length) {
    body.push('<h2 id="audio">Generated continuations</h2>', `<p class="note">${esc(NOTES.spectrogram)}</p>`);
    for (const m of media) {
      body.push(
        `<h3>${esc(m.run.name)}</h3>`,
        `<p class="note">${esc(NOTES.generation(m.run.generation!))}</p>`,
        '<div class="clips">',
        ...m.clips.map(
          (clip) =>
            `<figure class="clip" data-kind="${esc(clip.kind)}"><figcaption>${esc(clip.caption)}, ` +
            `${esc(clip.seconds.toFixed(2))} s</figcaption>` +
            `<audio controls preload="metadata" src="${esc(clip.wav)}"></audio>` +
            `<img src="${esc(clip.spectrogram)}" alt="spectrogram: ${esc(clip.caption)}"></figure>`,
        ),
        '</div>',
      );
    }
  }
  if (c.curves.length) body.push('<h2 id="curves">Training curves</h2>', ...c.curves.map((x) => charts.div(x.chart)));
  body.push(
    '<h2 id="settings">Settings and machine</h2>',
    ...c.runs.map(settings),
    `<p class="note">This page was written on ${esc(machineDescription())}, ${esc(os.platform())}.</p>`,
  );
  const page = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(c.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body>',
    ...body,
    ...charts.options,
    // ECharts (Apache-2.0, its licence header kept) inlined: the page works offline and from disk.
    `<script>${fs.readFileSync(ECHARTS_JS, 'utf8')}</script>`,
    `<script>${PAGE_SCRIPT}</script>`,
    '</body></html>',
    '',
  ];
  writeFileAtomic(out, page.join('\n'));
}
