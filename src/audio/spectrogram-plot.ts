/**
 * Draws a Spectrogram as an SVG a person can read: the pixels as an embedded PNG rendered at the
 * plot's own size (no scaling blur, and a bounded size for an hour of audio), time in seconds on x,
 * frequency in kHz on y, a title, the analysis settings, and a dB colour bar. svgToPng rasterises it
 * with the fonts that ship in npm, so the text renders the same everywhere.
 */
import pngjs from 'pngjs';
import { COLORMAP } from './colormap.js';
import type { Spectrogram } from './spectrogram.js';
import { FONT_FAMILY } from '../util/svg-png.js';

const { PNG } = pngjs;

/** A labelled instant, drawn as a dashed vertical line (e.g. where the prompt ends). */
export interface SpectrogramMark {
  seconds: number;
  label: string;
}

export interface SpectrogramPlotOptions {
  title?: string;
  marks?: SpectrogramMark[];
}

export const PLOT_WIDTH = 900;
const LEFT = 64;
const RIGHT = 104;
const TOP = 52;
const BOTTOM = 48;
const PLOT_H = 300;
const PLOT_W = PLOT_WIDTH - LEFT - RIGHT;
export const PLOT_HEIGHT = TOP + PLOT_H + BOTTOM;
/** Where the spectrogram's pixels lie in the picture (for tests and overlays). */
export const PLOT_AREA = { x: LEFT, y: TOP, width: PLOT_W, height: PLOT_H };

/**
 * Cells of `n` output pixels over `m` source items spanning [0, span): each pixel takes the loudest
 * item whose centre falls in it (so a short click survives a long file squeezed into 740 px), or the
 * nearest item when none does (a short file: each frame becomes a block of pixels).
 */
function pool(n: number, m: number, span: number, centre: (i: number) => number): Int32Array[] {
  const cells: Int32Array[] = [];
  let i = 0;
  for (let p = 0; p < n; p++) {
    const a = (p * span) / n;
    const b = ((p + 1) * span) / n;
    while (i < m && centre(i) < a) i++;
    let j = i;
    while (j < m && (centre(j) < b || (p === n - 1 && centre(j) <= b))) j++;
    if (j > i) {
      cells.push(Int32Array.from({ length: j - i }, (_, k) => i + k));
    } else {
      const mid = (a + b) / 2;
      let best = Math.min(m - 1, i);
      if (best > 0 && Math.abs(centre(best - 1) - mid) <= Math.abs(centre(best) - mid)) best--;
      cells.push(Int32Array.of(best));
    }
  }
  return cells;
}

function pngDataUri(width: number, height: number, rgba: (x: number, y: number, px: Buffer, at: number) => void) {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgba(x, y, png.data, 4 * (y * width + x));
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

function setColour(px: Buffer, at: number, level: number): void {
  const c = 3 * Math.max(0, Math.min(255, Math.round(level * 255)));
  px[at] = COLORMAP[c];
  px[at + 1] = COLORMAP[c + 1];
  px[at + 2] = COLORMAP[c + 2];
  px[at + 3] = 255;
}

/** The spectrogram pixels, PLOT_W x PLOT_H, low frequencies at the bottom. */
export function spectrogramPixels(s: Spectrogram): string {
  const cols = pool(PLOT_W, s.frames, s.duration, (t) => (t * s.hop + s.window / 2) / s.sampleRate);
  // Rows are pooled bottom-up (row 0 = 0 Hz) and flipped when drawn.
  const rows = pool(PLOT_H, s.bins, s.maxHz, (k) => k * s.binHz);
  const range = s.maxDb - s.floorDb;
  const column = new Float32Array(s.bins);
  const levels = new Float32Array(PLOT_W * PLOT_H);
  cols.forEach((frames, x) => {
    column.fill(-Infinity);
    for (const t of frames) for (let k = 0; k < s.bins; k++) column[k] = Math.max(column[k], s.db[t * s.bins + k]);
    rows.forEach((bins, r) => {
      let v = -Infinity;
      for (const k of bins) v = Math.max(v, column[k]);
      levels[(PLOT_H - 1 - r) * PLOT_W + x] = range > 0 ? (v - s.floorDb) / range : 0;
    });
  });
  return pngDataUri(PLOT_W, PLOT_H, (x, y, px, at) => setColour(px, at, levels[y * PLOT_W + x]));
}

/** Tick step of 1, 2 or 5 times a power of ten giving at most `most` intervals over `span`. */
export function niceStep(span: number, most: number): number {
  const raw = span / most;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * p;
}

function ticks(max: number, step: number): number[] {
  const out: number[] = [];
  for (let k = 0; k * step <= max * (1 + 1e-9); k++) out.push(k * step);
  return out;
}

function label(v: number, step: number): string {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(decimals);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

export function spectrogramSvg(s: Spectrogram, opts: SpectrogramPlotOptions = {}): string {
  const parts: string[] = [];
  const xOf = (sec: number) => LEFT + (sec / s.duration) * PLOT_W;
  const yOf = (hz: number) => TOP + PLOT_H - (hz / s.maxHz) * PLOT_H;
  parts.push(`<rect width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" fill="white"/>`);
  parts.push(text(LEFT, 22, opts.title ?? 'Spectrogram', 'font-size="16" font-weight="bold"'));
  const ms = (n: number) => `${+((n / s.sampleRate) * 1000).toFixed(2)} ms`;
  parts.push(
    text(
      LEFT,
      40,
      `${s.duration.toFixed(2)} s at ${s.sampleRate} Hz · ${ms(s.window)} Hann windows every ${ms(s.hop)}, ` +
        `${s.fftSize}-point FFT · ${s.maxDb - s.floorDb} dB shown below the loudest bin`,
      'font-size="11" fill="#555"',
    ),
  );
  parts.push(
    `<image x="${LEFT}" y="${TOP}" width="${PLOT_W}" height="${PLOT_H}" preserveAspectRatio="none" ` +
      `image-rendering="optimizeSpeed" href="${spectrogramPixels(s)}"/>`,
  );
  parts.push(`<rect x="${LEFT}" y="${TOP}" width="${PLOT_W}" height="${PLOT_H}" fill="none" stroke="#333"/>`);
  const tStep = niceStep(s.duration, 10);
  for (const t of ticks(s.duration, tStep)) {
    const x = xOf(t);
    parts.push(`<line x1="${x}" y1="${TOP + PLOT_H}" x2="${x}" y2="${TOP + PLOT_H + 5}" stroke="#333"/>`);
    parts.push(text(x, TOP + PLOT_H + 18, label(t, tStep), 'font-size="11" text-anchor="middle"'));
  }
  parts.push(text(LEFT + PLOT_W / 2, TOP + PLOT_H + 38, 'time (s)', 'font-size="12" text-anchor="middle"'));
  const fStep = niceStep(s.maxHz / 1000, 8);
  for (const k of ticks(s.maxHz / 1000, fStep)) {
    const y = yOf(k * 1000);
    parts.push(`<line x1="${LEFT - 5}" y1="${y}" x2="${LEFT}" y2="${y}" stroke="#333"/>`);
    parts.push(text(LEFT - 8, y + 4, label(k, fStep), 'font-size="11" text-anchor="end"'));
  }
  const yMid = TOP + PLOT_H / 2;
  parts.push(
    text(20, yMid, 'frequency (kHz)', `font-size="12" text-anchor="middle" transform="rotate(-90 20 ${yMid})"`),
  );
  for (const m of opts.marks ?? []) {
    if (!(m.seconds > 0 && m.seconds < s.duration)) continue;
    const x = xOf(m.seconds);
    parts.push(
      `<line x1="${x}" y1="${TOP}" x2="${x}" y2="${TOP + PLOT_H}" stroke="white" stroke-width="1.5" ` +
        'stroke-dasharray="5 4"/>',
    );
    parts.push(text(x + 4, TOP + 14, m.label, 'font-size="11" fill="white"'));
  }
  parts.push(colourBar(s));
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" ` +
    `viewBox="0 0 ${PLOT_WIDTH} ${PLOT_HEIGHT}" font-family="${FONT_FAMILY}">${parts.join('')}</svg>`
  );
}

/** The colour bar: loudest at the top, labelled in dB every 20 dB (0 dB = a full-scale sine). */
function colourBar(s: Spectrogram): string {
  const x = LEFT + PLOT_W + 18;
  const w = 14;
  const bar = pngDataUri(1, PLOT_H, (_x, y, px, at) => setColour(px, at, 1 - y / (PLOT_H - 1)));
  const parts = [
    text(x - 2, TOP - 6, 'dBFS', 'font-size="11"'),
    `<image x="${x}" y="${TOP}" width="${w}" height="${PLOT_H}" preserveAspectRatio="none" href="${bar}"/>`,
    `<rect x="${x}" y="${TOP}" width="${w}" height="${PLOT_H}" fill="none" stroke="#333"/>`,
  ];
  const range = s.maxDb - s.floorDb;
  for (let v = Math.ceil(s.floorDb / 20) * 20; v <= s.maxDb; v += 20) {
    const y = TOP + ((s.maxDb - v) / range) * PLOT_H;
    parts.push(`<line x1="${x + w}" y1="${y}" x2="${x + w + 4}" y2="${y}" stroke="#333"/>`);
    parts.push(text(x + w + 7, y + 4, `${v}`, 'font-size="11"'));
  }
  return parts.join('');
}
