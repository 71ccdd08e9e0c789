/**
 * Charts as one description drawn by Apache ECharts: rendered to SVG on the server (Markdown
 * reports, PNGs through resvg) and handed unchanged to the same library in the HTML report, where
 * it is interactive. The option is plain JSON (no formatter functions) so it can be embedded in a page.
 */
import * as echarts from 'echarts';
import { FONT_FAMILY, measureText, svgToPng } from '../util/svg-png.js';

// Without a canvas, ECharts estimates text widths from Helvetica-like metrics; DejaVu is wider, so
// legends and labels laid out here would overlap in the PNG. Measure with the real font instead.
echarts.setPlatformAPI({ measureText: (text, font) => ({ width: measureText(text, font ?? `12px ${FONT_FAMILY}`) }) });

export interface Series {
  name: string;
  points: [number, number][];
  /** '#rrggbb'; anything else falls back to the palette */
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

export const DEFAULT_WIDTH = 900;
export const DEFAULT_HEIGHT = 420;
const INK = '#222222';

const colourOf = (c: string | undefined, k: number) =>
  c && /^#[0-9a-f]{6}$/i.test(c) ? c : PALETTE[k % PALETTE.length];

// Six significant digits of a value are more than a reader needs and keep the embedded JSON small
// (x stays exact: it is a step or a sample count a tooltip should show as counted).
const round = (v: number) => Number(v.toPrecision(6));

/** Points a chart can draw: finite, and positive on a log axis. */
function drawable(points: [number, number][], xLog: boolean, yLog: boolean): [number, number][] {
  return points
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0) && (!yLog || y > 0))
    .map(([x, y]) => [x, round(y)]);
}

function axisName(name: string, vertical: boolean) {
  return {
    name,
    nameLocation: 'middle',
    nameGap: vertical ? 56 : 30,
    nameTextStyle: { color: INK, fontSize: 13 },
    axisLine: { lineStyle: { color: INK } },
    axisLabel: { color: INK, fontSize: 12 },
    splitLine: { lineStyle: { color: '#e3e3e3' } },
  };
}

function noData() {
  return {
    type: 'text',
    left: 'center',
    top: 'middle',
    style: { text: 'no data', fill: '#7f7f7f', fontSize: 16, fontFamily: FONT_FAMILY },
  };
}

/** Tick text of a log axis: 1e-7 for powers of ten beyond a thousand either way, else the decimal. */
export function pow10Label(v: number): string {
  const k = Math.round(Math.log10(v));
  return Math.abs(k) > 3 ? `1e${k}` : String(v);
}

/**
 * Options are JSON, which carries no functions: an axis asks for `pow10Label` by name, and this
 * puts the function in before ECharts sees the option. The page runs this same function (its
 * source is embedded), so a label reads the same in the PNG and in the browser.
 */
export function reviveFormatters(option: Record<string, unknown>): Record<string, unknown> {
  for (const key of ['xAxis', 'yAxis']) {
    const label = (option[key] as { axisLabel?: { formatter?: unknown } } | undefined)?.axisLabel;
    if (label?.formatter === 'pow10Label') label.formatter = pow10Label;
  }
  return option;
}

/**
 * Powers of ten covering positive values, with the axis range pinned to them: ECharts' own log
 * ticks print float noise such as 0.00009999999999999999 for 1e-4.
 */
function logAxis(values: number[]) {
  const pos = values.filter((v) => v > 0);
  if (!pos.length) return {};
  const lo = Math.floor(Math.log10(Math.min(...pos)) + 1e-9),
    hi = Math.ceil(Math.log10(Math.max(...pos)) - 1e-9);
  const ticks = Array.from({ length: Math.max(1, hi - lo) + 1 }, (_, k) => Number(`1e${lo + k}`));
  return {
    min: ticks[0],
    max: ticks[ticks.length - 1],
    axisLabel: { color: INK, fontSize: 12, customValues: ticks, formatter: 'pow10Label' },
    axisTick: { customValues: ticks },
  };
}

/** The ECharts option of a chart: the same object draws the SVG here and the interactive chart in a page. */
export function chartOption(chart: LineChart): Record<string, unknown> {
  const base = {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT_FAMILY },
    title: { text: chart.title, left: 'center', top: 6, textStyle: { color: INK, fontSize: 16 } },
    grid: { left: 76, right: 32, top: 64, bottom: 48 },
  };
  if (chart.bars) {
    const bars = chart.bars.filter((b) => Number.isFinite(b.value));
    return {
      ...base,
      ...(bars.length ? {} : { graphic: [noData()] }),
      tooltip: { trigger: 'item' },
      xAxis: { type: 'category', data: bars.map((b) => b.label), ...axisName(chart.xLabel, false) },
      yAxis: { type: 'value', ...axisName(chart.yLabel, true) },
      series: [
        {
          type: 'bar',
          name: chart.yLabel,
          barMaxWidth: 80,
          label: { show: true, position: 'top', color: INK },
          // Bars are read by their labels: three decimals, as the tables give NLL in bits.
          data: bars.map((b, k) => ({ value: Number(b.value.toFixed(3)), itemStyle: { color: colourOf(b.color, k) } })),
        },
      ],
    };
  }
  const xLog = !!chart.xLog,
    yLog = !!chart.yLog;
  const series = chart.series.map((s, k) => ({ s, k, points: drawable(s.points, xLog, yLog) }));
  const empty = series.every((x) => !x.points.length);
  const ticks = chart.xTicks?.filter(Number.isFinite);
  const xs = series.flatMap((x) => x.points.map((p) => p[0]));
  return {
    ...base,
    ...(empty ? { graphic: [noData()] } : {}),
    legend: { top: 30, type: 'scroll', textStyle: { color: INK } },
    tooltip: { trigger: 'axis' },
    // Ctrl + wheel zooms, drag pans; a plain wheel scrolls the page past the chart.
    dataZoom: [{ type: 'inside', zoomOnMouseWheel: 'ctrl', moveOnMouseWheel: false }],
    xAxis: {
      type: xLog ? 'log' : 'value',
      ...axisName(chart.xLabel, false),
      ...(ticks?.length
        ? {
            min: Math.min(...ticks, ...xs),
            max: Math.max(...ticks, ...xs),
            axisLabel: { color: INK, fontSize: 12, customValues: ticks },
            axisTick: { customValues: ticks },
          }
        : xLog
          ? logAxis(xs)
          : {}),
    },
    yAxis: {
      type: yLog ? 'log' : 'value',
      scale: !yLog,
      ...axisName(chart.yLabel, true),
      ...(yLog ? logAxis(series.flatMap((x) => x.points.map((p) => p[1]))) : {}),
    },
    series: series.map(({ s, k, points }) => ({
      type: 'line',
      name: s.name,
      data: points,
      color: colourOf(s.color, k),
      showSymbol: points.length <= 30,
      sampling: 'lttb',
      lineStyle: { width: 2, type: s.dashed ? 'dashed' : 'solid' },
    })),
  };
}

/** A standalone SVG document of the chart, drawn by ECharts' server-side renderer. */
export function chartSvg(chart: LineChart): string {
  const c = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: chart.width ?? DEFAULT_WIDTH,
    height: chart.height ?? DEFAULT_HEIGHT,
  });
  try {
    c.setOption(reviveFormatters(chartOption(chart)));
    return c.renderToSVGString();
  } finally {
    c.dispose();
  }
}

/** The chart as a PNG at its own size, text in the DejaVu font shipped with the package. */
export function chartPng(chart: LineChart): Uint8Array {
  return svgToPng(chartSvg(chart));
}
