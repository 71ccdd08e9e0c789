import { Canvas, textWidth } from './raster.js';

export interface Series {
  name: string;
  points: [number, number][];
  /** '#rrggbb'; anything else falls back to the palette (it would otherwise leak into the SVG). */
  color?: string;
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  yLog?: boolean;
  xLog?: boolean;
  /** Default 900. */
  width?: number;
  /** Default 420. */
  height?: number;
  /** Explicit x tick positions instead of the automatic nice ones. */
  xTicks?: number[];
  /** When set, a bar chart of these categories replaces the series (no legend: bars are labelled). */
  bars?: { label: string; value: number; color?: string }[];
}

/** matplotlib's tab10, so the plots look familiar next to Python-made ones. */
export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

// Both renderers draw the one scene below, so SVG and PNG share the layout to the pixel. Text is
// laid out in 5x7 font cells (6*scale px advance), which the SVG matches with a monospace font at
// 10*scale px: cap height ~0.73em and advance ~0.6em give the same footprint.
type Align = 'left' | 'center' | 'right';
type Prim =
  | { t: 'rect'; x: number; y: number; w: number; h: number; fill?: string; stroke?: string }
  | { t: 'poly'; pts: [number, number][]; color: string; width: number; dashed?: boolean }
  | { t: 'text'; x: number; y: number; s: string; color: string; scale: number; align: Align; vertical?: boolean };
interface Scene {
  w: number;
  h: number;
  prims: Prim[];
}

const LABEL = 2; // font scale for everything but the title
const CH = 7 * LABEL; // label text height
const GRID = '#e3e3e3',
  INK = '#222222',
  DASH = [8, 5];

/** Ticks at 1, 2 or 5 x 10^k covering [min, max], picking the step whose tick count is closest to approxCount. */
export function niceTicks(min: number, max: number, approxCount = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    [min, max] = [min - pad, max + pad];
  }
  const n = Math.max(1, approxCount);
  const mag = 10 ** Math.floor(Math.log10((max - min) / n));
  let best: number[] = [];
  for (const m of [0.5, 1, 2, 5, 10]) {
    const step = m * mag;
    const lo = Math.floor(min / step + 1e-9),
      hi = Math.ceil(max / step - 1e-9);
    const ticks: number[] = [];
    for (let k = lo; k <= hi; k++) ticks.push(clean(k * step));
    if (!best.length || Math.abs(ticks.length - n) < Math.abs(best.length - n)) best = ticks;
  }
  return best;
}

// Float noise such as 0.30000000000000004 would otherwise show up in labels and SVG coordinates.
const clean = (v: number) => (v === 0 ? 0 : parseFloat(v.toPrecision(12)));

function fmtLinear(v: number, step: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e6 || Math.abs(step) < 1e-4) return fmtNum(v);
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

/** Plain decimals inside [lo, hi), else a short 2.5e-4 style: long zero runs are hard to count in a label. */
function fmtNum(v: number, lo = 1e-3, hi = 1e6, digits = 12): string {
  const a = Math.abs(v);
  if (a === 0 || (a >= lo && a < hi)) return String(clean(parseFloat(v.toPrecision(digits))));
  const [m, e] = v.toExponential(3).split('e') as [string, string];
  return `${m.replace(/\.?0+$/, '')}e${e.replace('+', '')}`;
}

// Log axes read in decades, so 1e-3 rather than 0.001 as soon as the zeros start piling up.
const fmtLog = (v: number) => fmtNum(v, 0.01, 1001);

interface Tick {
  v: number;
  label?: string;
}
interface Axis {
  log: boolean;
  lo: number;
  hi: number;
  ticks: Tick[];
}

/** Axis domain (in log10 units when log) and ticks; unlabelled ticks only draw a grid line. */
function makeAxis(vals: number[], log: boolean, approx: number, explicit?: number[]): Axis {
  const extra = (explicit ?? []).filter((v) => Number.isFinite(v) && (!log || v > 0));
  const [min, max] = extent(vals.concat(extra));
  if (log) {
    let loE = min <= max ? Math.floor(Math.log10(min)) : 0;
    let hiE = min <= max ? Math.ceil(Math.log10(max)) : 1;
    if (hiE === loE) hiE++;
    const every = Math.max(1, Math.ceil((hiE - loE) / 8));
    loE = Math.floor(loE / every) * every;
    hiE = Math.ceil(hiE / every) * every;
    const ticks: Tick[] = [];
    if (extra.length) for (const v of extra) ticks.push({ v, label: fmtLog(v) });
    for (let e = loE; e <= hiE; e += every) {
      if (!extra.length) ticks.push({ v: 10 ** e, label: fmtLog(10 ** e) });
      // Minor 2..9 lines help reading values off a few decades; a lone decade also labels 2 and 5.
      if (e < hiE && every === 1 && hiE - loE <= 4) {
        for (let m = 2; m <= 9; m++)
          ticks.push({
            v: clean(m * 10 ** e),
            label: hiE - loE === 1 && (m === 2 || m === 5) && !extra.length ? fmtLog(clean(m * 10 ** e)) : undefined,
          });
      }
    }
    return { log, lo: loE, hi: hiE, ticks };
  }
  const lo = min <= max ? min : 0,
    hi = min <= max ? max : 1;
  const tv = extra.length ? extra : niceTicks(lo, hi, approx);
  // Explicit ticks need not be evenly spaced, so they get plain number labels rather than fixed decimals.
  const label = (v: number) => (extra.length ? fmtNum(v) : fmtLinear(v, tv[1]! - tv[0]!));
  return { log, lo: Math.min(lo, ...tv), hi: Math.max(hi, ...tv), ticks: tv.map((v) => ({ v, label: label(v) })) };
}

/** [min, max] by a loop: spreading a long training curve into Math.min overflows the stack. */
function extent(vs: number[]): [number, number] {
  let lo = Infinity,
    hi = -Infinity;
  for (const v of vs) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * Keeps the first, lowest, highest and last point of each pixel column of an x-sorted line, which
 * draws the same picture as all of them: a 200k-step loss log would otherwise make a multi-MB SVG.
 */
function thin(pts: [number, number][]): [number, number][] {
  if (pts.length < 2000 || pts.some((p, i) => i > 0 && p[0] < pts[i - 1]![0])) return pts;
  const out: [number, number][] = [];
  for (let i = 0; i < pts.length;) {
    const col = Math.floor(pts[i]![0]);
    let j = i,
      lo = i,
      hi = i;
    for (; j < pts.length && Math.floor(pts[j]![0]) === col; j++) {
      if (pts[j]![1] < pts[lo]![1]) lo = j;
      if (pts[j]![1] > pts[hi]![1]) hi = j;
    }
    for (const k of [...new Set([i, Math.min(lo, hi), Math.max(lo, hi), j - 1])]) out.push(pts[k]!);
    i = j;
  }
  return out;
}

function project(a: Axis, v: number, p0: number, p1: number): number {
  const u = a.log ? Math.log10(v) : v;
  return a.hi === a.lo ? (p0 + p1) / 2 : p0 + ((u - a.lo) / (a.hi - a.lo)) * (p1 - p0);
}

function widest(ticks: Tick[]): number {
  return Math.max(0, ...ticks.map((t) => (t.label ? textWidth(t.label, LABEL) : 0)));
}

/** Cuts a label to fit maxW pixels at the given scale, marking the cut with '..'. */
function fit(s: string, maxW: number, scale: number): string {
  if (textWidth(s, scale) <= maxW) return s;
  const chars = [...s];
  while (chars.length && textWidth(chars.join('') + '..', scale) > maxW) chars.pop();
  return chars.join('') + '..';
}

/**
 * Up to two lines of whole words that fit maxW at label scale (the second cut if need be);
 * [] when even the first word is too wide.
 */
function wrap(s: string, maxW: number): string[] {
  if (textWidth(s, LABEL) <= maxW) return [s];
  const words = s.split(/\s+/);
  let k = 0;
  while (k < words.length && textWidth(words.slice(0, k + 1).join(' '), LABEL) <= maxW) k++;
  return k === 0 ? [] : [words.slice(0, k).join(' '), fit(words.slice(k).join(' '), maxW, LABEL)];
}

const colorOr = (c: string | undefined, i: number) =>
  c && /^#[0-9a-f]{6}$/i.test(c) ? c : PALETTE[i % PALETTE.length]!;

function layout(c: LineChart): Scene {
  const W = Math.max(240, Math.round(c.width ?? 900)),
    H = Math.max(160, Math.round(c.height ?? 420));
  const prims: Prim[] = [];
  const text = (x: number, y: number, s: string, o: Partial<Extract<Prim, { t: 'text' }>> = {}) =>
    prims.push({ t: 'text', x, y, s, color: INK, scale: LABEL, align: 'center', ...o });

  const bars = c.bars?.filter((b) => Number.isFinite(b.value) && (!c.yLog || b.value > 0));
  const series = (c.bars ? [] : (c.series ?? [])).map((s, i) => ({
    ...s,
    color: colorOr(s.color, i),
    pts: s.points.filter(
      ([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.xLog || x > 0) && (!c.yLog || y > 0),
    ),
  }));
  const yVals = bars ? bars.map((b) => b.value) : series.flatMap((s) => s.pts.map((p) => p[1]));
  if (bars && !c.yLog && yVals.length) {
    // Bars grow from zero, and their value labels need headroom above the tallest one.
    const lo = Math.min(0, ...yVals),
      hi = Math.max(0, ...yVals);
    yVals.push(lo - (lo < 0 ? 0.1 : 0) * (hi - lo), hi + 0.1 * (hi - lo));
  }
  const empty = bars ? bars.length === 0 : series.every((s) => s.pts.length === 0);

  const titleScale = textWidth(c.title, 3) <= W - 20 ? 3 : LABEL;
  // Bar charts keep room for category labels wrapped onto a second line.
  const top = 14 + 7 * titleScale + 14,
    bottom = 5 + 8 + CH + 12 + CH + 12 + (bars ? CH + 4 : 0);
  const ph = H - top - bottom;
  const yAxis = makeAxis(yVals, !!c.yLog, Math.max(2, Math.round(ph / 50)));
  const left = 12 + CH + 12 + widest(yAxis.ticks) + 8 + 5;
  let right = 24,
    pw = W - left - right;
  let xAxis: Axis | undefined;
  if (!bars) {
    const xVals = series.flatMap((s) => s.pts.map((p) => p[0]));
    // Fewer ticks until the labels stop colliding; long step counts like 250000 need the room.
    for (let n = Math.max(2, Math.round(pw / 90)); n >= 2; n--) {
      xAxis = makeAxis(xVals, !!c.xLog, n, c.xTicks);
      const shown = xAxis.ticks.filter((t) => t.label).length;
      if (c.xTicks || c.xLog || (widest(xAxis.ticks) + 16) * Math.max(1, shown - 1) <= pw) break;
    }
    const lastW = widest(xAxis!.ticks.slice(-1));
    if (lastW / 2 + 6 > right) {
      right = Math.ceil(lastW / 2 + 6);
      pw = W - left - right;
    }
  }
  const px = (v: number) => project(xAxis!, v, left, left + pw);
  const py = (v: number) => project(yAxis, v, top + ph, top);
  const inside = (v: number, lo: number, hi: number) => v >= lo - 0.5 && v <= hi + 0.5;

  for (const t of yAxis.ticks) {
    const y = py(t.v);
    if (!inside(y, top, top + ph)) continue;
    prims.push({
      t: 'poly',
      pts: [
        [left, y],
        [left + pw, y],
      ],
      color: t.label ? GRID : '#f1f1f1',
      width: 1,
    });
    if (t.label) {
      prims.push({
        t: 'poly',
        pts: [
          [left - 5, y],
          [left, y],
        ],
        color: INK,
        width: 1,
      });
      text(left - 8, y, t.label, { align: 'right' });
    }
  }
  const tickY = top + ph + 5 + 8 + CH / 2;
  if (xAxis) {
    for (const t of xAxis.ticks) {
      const x = px(t.v);
      if (!inside(x, left, left + pw)) continue;
      prims.push({
        t: 'poly',
        pts: [
          [x, top],
          [x, top + ph],
        ],
        color: t.label ? GRID : '#f1f1f1',
        width: 1,
      });
      if (t.label) {
        prims.push({
          t: 'poly',
          pts: [
            [x, top + ph],
            [x, top + ph + 5],
          ],
          color: INK,
          width: 1,
        });
        text(x, tickY, t.label);
      }
    }
  }

  if (bars) {
    const slot = pw / Math.max(1, bars.length);
    const lines = bars.map((b) => wrap(b.label, slot - 6));
    const labelScale = lines.every((l) => l.length > 0) ? LABEL : 1;
    const base = yAxis.log ? top + ph : Math.min(top + ph, Math.max(top, py(0)));
    bars.forEach((b, i) => {
      const cx = left + slot * (i + 0.5),
        bw = Math.max(1, slot * 0.7),
        y = py(b.value);
      prims.push({
        t: 'rect',
        x: cx - bw / 2,
        y: Math.min(y, base),
        w: bw,
        h: Math.abs(base - y),
        fill: colorOr(b.color, i),
      });
      prims.push({
        t: 'poly',
        pts: [
          [cx, top + ph],
          [cx, top + ph + 5],
        ],
        color: INK,
        width: 1,
      });
      if (labelScale === 1) text(cx, tickY, fit(b.label, slot - 4, 1), { scale: 1 });
      else lines[i]!.forEach((l, k) => text(cx, tickY + k * (CH + 4), l));
      const v = fmtNum(b.value, 1e-3, 1e6, 4),
        vs = textWidth(v, LABEL) <= slot - 4 ? LABEL : 1;
      text(cx, b.value >= 0 || yAxis.log ? y - 5 - 3.5 * vs : y + 5 + 3.5 * vs, v, { scale: vs });
    });
  }
  for (const s of series) {
    const pts = thin(s.pts.map(([x, y]) => [px(x), py(y)] as [number, number]));
    if (pts.length === 1) {
      const [x, y] = pts[0]!;
      prims.push({ t: 'rect', x: x - 3, y: y - 3, w: 6, h: 6, fill: s.color });
    } else if (pts.length > 1) prims.push({ t: 'poly', pts, color: s.color, width: 2, dashed: s.dashed });
  }
  prims.push({ t: 'rect', x: left, y: top, w: pw, h: ph, stroke: INK });
  if (empty) text(left + pw / 2, top + ph / 2, 'no data', { color: '#888888' });

  if (series.length) {
    const nameW = Math.min(pw * 0.45, Math.max(...series.map((s) => textWidth(s.name, LABEL))));
    const rowH = CH + 8,
      lw = 10 + 26 + 8 + nameW + 10,
      lh = series.length * rowH + 8;
    const lx = left + pw - 8 - lw,
      ly = top + 8;
    prims.push({ t: 'rect', x: lx, y: ly, w: lw, h: lh, fill: '#ffffff', stroke: '#bbbbbb' });
    series.forEach((s, i) => {
      const y = ly + 4 + rowH * (i + 0.5);
      prims.push({
        t: 'poly',
        pts: [
          [lx + 10, y],
          [lx + 36, y],
        ],
        color: s.color,
        width: 2,
        dashed: s.dashed,
      });
      text(lx + 44, y, fit(s.name, nameW, LABEL), { align: 'left' });
    });
  }

  text(W / 2, 14 + 3.5 * titleScale, fit(c.title, W - 20, titleScale), { scale: titleScale });
  text(left + pw / 2, H - 12 - CH / 2, fit(c.xLabel, W - 20, LABEL));
  text(12 + CH / 2, top + ph / 2, fit(c.yLabel, H - 20, LABEL), { vertical: true });
  return { w: W, h: H, prims };
}

function esc(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex -- control characters are exactly what XML forbids here
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

const n1 = (v: number) => String(Math.round(v * 10) / 10);

/** A standalone SVG document of the chart. */
export function chartSvg(c: LineChart): string {
  const { w, h, prims } = layout(c);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
      'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">',
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
  ];
  for (const p of prims) {
    if (p.t === 'rect') {
      out.push(
        `<rect x="${n1(p.x)}" y="${n1(p.y)}" width="${n1(p.w)}" height="${n1(p.h)}" fill="${p.fill ?? 'none'}"` +
          `${p.stroke ? ` stroke="${p.stroke}" shape-rendering="crispEdges"` : ''}/>`,
      );
    } else if (p.t === 'poly') {
      const crisp = p.pts.length === 2 && p.width === 1 ? ' shape-rendering="crispEdges"' : '';
      const dash = p.dashed ? ` stroke-dasharray="${DASH.join(' ')}"` : '';
      out.push(
        `<polyline points="${p.pts.map(([x, y]) => `${n1(x)},${n1(y)}`).join(' ')}" fill="none" ` +
          `stroke="${p.color}" stroke-width="${p.width}" stroke-linejoin="round"${dash}${crisp}/>`,
      );
    } else {
      const anchor = p.align === 'left' ? 'start' : p.align === 'right' ? 'end' : 'middle';
      const rot = p.vertical ? ` transform="rotate(-90 ${n1(p.x)} ${n1(p.y)})"` : '';
      out.push(
        `<text x="${n1(p.x)}" y="${n1(p.y)}" font-size="${10 * p.scale}" fill="${p.color}" text-anchor="${anchor}" ` +
          `dominant-baseline="central"${rot}>${esc(p.s)}</text>`,
      );
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

/** PNG bytes of the same scene, drawn with the 5x7 bitmap font; the y label is rotated, not stacked. */
export function chartPng(c: LineChart): Buffer {
  const { w, h, prims } = layout(c);
  const cv = new Canvas(w, h, '#ffffff');
  for (const p of prims) {
    if (p.t === 'rect') {
      if (p.fill) cv.fillRect(p.x, p.y, p.w, p.h, p.fill);
      if (p.stroke) cv.rect(p.x, p.y, p.w, p.h, p.stroke);
    } else if (p.t === 'poly') {
      cv.polyline(p.pts, p.color, p.width, p.dashed ? DASH : undefined);
    } else {
      const half = 3.5 * p.scale;
      if (p.vertical) cv.text(p.x - half, p.y, p.s, p.color, { scale: p.scale, align: p.align, vertical: true });
      else cv.text(p.x, p.y - half, p.s, p.color, { scale: p.scale, align: p.align });
    }
  }
  return cv.toPng();
}
