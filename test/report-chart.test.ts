import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { chartOption, chartPng, chartSvg, PALETTE, type LineChart } from '../src/report/chart.js';
import { FONT_FAMILY, measureText, svgToPng } from '../src/util/svg-png.js';

interface Decoded {
  w: number;
  h: number;
  px: (x: number, y: number) => string;
  colours: Set<string>;
  /** pixels darker than mid grey inside [x0, x1) x [y0, y1) */
  dark: (x0: number, y0: number, x1: number, y1: number) => number;
}

function decodePng(png: Uint8Array): Decoded {
  const img = PNG.sync.read(Buffer.from(png));
  const { width: w, height: h, data } = img;
  const px = (x: number, y: number) => {
    const i = 4 * (y * w + x);
    return '#' + [data[i]!, data[i + 1]!, data[i + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('');
  };
  const colours = new Set<string>();
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) colours.add(px(x, y));
  const dark = (x0: number, y0: number, x1: number, y1: number) => {
    let n = 0;
    for (let y = y0; y < y1; y++)
      for (let x = x0; x < x1; x++) {
        const i = 4 * (y * w + x);
        if (data[i]! + data[i + 1]! + data[i + 2]! < 3 * 128) n++;
      }
    return n;
  };
  return { w, h, px, colours, dark };
}

const twoSeries: LineChart = {
  title: 'Loss <train & valid>',
  xLabel: 'step',
  yLabel: 'loss (nats)',
  series: [
    {
      name: 'a<&>b',
      points: [
        [0, 3],
        [1, 2.5],
        [2, 2.2],
        [3, 2.1],
      ],
      color: '#d62728',
    },
    {
      name: 'valid',
      points: [
        [0, 3.2],
        [1, 2.7],
        [2, NaN],
        [3, 2.4],
      ],
      dashed: true,
    },
  ],
};

const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

test('chartSvg is a standalone document with escaped title and names, dashed and palette series', () => {
  const svg = chartSvg(twoSeries);
  assert.ok(svg.startsWith('<svg'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(svg.includes('Loss &lt;train &amp; valid&gt;'));
  assert.ok(svg.includes('&lt;&amp;&gt;'));
  assert.ok(!svg.includes('a<&>b'));
  assert.ok(texts(svg).includes('valid'));
  assert.ok(svg.includes(`stroke="${PALETTE[1]}"`), 'second series without colour takes the palette');
  assert.ok(svg.includes('stroke-dasharray'), 'dashed series is dashed');
  assert.ok(!svg.includes('NaN'), 'non-finite points are skipped, not written');
});

test('the option is plain JSON, so the page draws the same chart the SVG shows', () => {
  for (const c of [twoSeries, { ...twoSeries, yLog: true }, { ...twoSeries, bars: [{ label: 'x', value: 1 }] }]) {
    const o = chartOption(c);
    assert.deepEqual(JSON.parse(JSON.stringify(o)), o);
  }
});

test('log axis skips non-positive and non-finite values and labels exact powers of ten', () => {
  const c: LineChart = {
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    yLog: true,
    series: [
      {
        name: 's',
        color: '#123456',
        points: [
          [1, 1e-4],
          [2, 0],
          [3, -1],
          [4, 1e-3],
          [5, Infinity],
          [6, 0.1],
        ],
      },
    ],
  };
  const o = chartOption(c) as { series: { data: number[][] }[] };
  assert.deepEqual(o.series[0]!.data, [
    [1, 1e-4],
    [4, 1e-3],
    [6, 0.1],
  ]);
  const labels = texts(chartSvg(c));
  for (const l of ['1e-4', '0.001', '0.01', '0.1']) assert.ok(labels.includes(l), `label ${l} in ${labels}`);
  assert.ok(!labels.some((l) => /\d{8}/.test(l!)), `no float noise in ${labels}`);
});

test('empty charts render a no-data note instead of throwing', () => {
  for (const c of [
    { title: 'e', xLabel: 'x', yLabel: 'y', series: [] },
    {
      title: 'e',
      xLabel: 'x',
      yLabel: 'y',
      yLog: true,
      series: [
        {
          name: 'z',
          points: [
            [1, 0],
            [2, NaN],
          ] as [number, number][],
        },
      ],
    },
    { title: 'e', xLabel: 'x', yLabel: 'y', series: [], bars: [] },
  ] satisfies LineChart[]) {
    assert.ok(chartSvg(c).includes('no data'));
    assert.equal(decodePng(chartPng(c)).w, 900);
  }
});

test('bar chart: one bar per finite category, labelled with its value', () => {
  const c: LineChart = {
    title: 'NLL',
    xLabel: 'model',
    yLabel: 'nats',
    series: [],
    bars: [
      { label: 'WaveNet', value: 2.5, color: '#00aa00' },
      { label: 'TXL', value: 2.3 },
      { label: 'bad', value: NaN },
    ],
  };
  const svg = chartSvg(c);
  assert.equal((svg.match(/fill="#00aa00"/g) ?? []).length, 1);
  const labels = texts(svg);
  assert.ok(labels.includes('WaveNet') && labels.includes('TXL') && !labels.includes('bad'));
  assert.ok(labels.includes('2.5') && labels.includes('2.3'), 'values on the bars');
  assert.ok(decodePng(chartPng(c)).colours.has('#00aa00'));
});

test('explicit x ticks get exact labels; a long curve is thinned to the pixels but keeps its spike', () => {
  const ticks = chartSvg({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    xTicks: [0, 0.25, 0.5],
    series: [
      {
        name: 's',
        points: [
          [0, 1],
          [0.5, 2],
        ],
      },
    ],
  });
  for (const l of ['0', '0.25', '0.5']) assert.ok(texts(ticks).includes(l), `tick label ${l}`);
  const points = Array.from({ length: 100000 }, (_, i) => [i, i === 54321 ? 10 : (i % 97) / 97] as [number, number]);
  const chart: LineChart = { title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', color: '#654321', points }] };
  const svg = chartSvg(chart);
  assert.ok(svg.length < 200_000, `${svg.length} bytes`);
  // The spike is the axis maximum: the drawn line must reach the top gridline's height.
  const d = decodePng(chartPng(chart));
  let top = d.h;
  for (let y = 0; y < d.h && top === d.h; y++) for (let x = 0; x < d.w; x++) if (d.px(x, y) === '#654321') top = y;
  assert.ok(top < 80, `line reaches y=${top}, near the plot's top`);
});

test('chartPng is a PNG at the chart size with both series colours and real text', () => {
  const d = decodePng(chartPng(twoSeries));
  assert.equal(d.w, 900);
  assert.equal(d.h, 420);
  assert.equal(d.px(0, 0), '#ffffff');
  assert.ok(d.colours.has('#d62728'), 'explicit colour');
  assert.ok(d.colours.has(PALETTE[1]!), 'palette colour of the uncoloured series');
  const small = decodePng(chartPng({ ...twoSeries, width: 400, height: 250 }));
  assert.equal(small.w, 400);
  assert.equal(small.h, 250);
  // The title's glyphs are drawn from the bundled font: a different title inks different pixels.
  const a = decodePng(chartPng({ ...twoSeries, title: 'IIIIIIII' }));
  const b = decodePng(chartPng({ ...twoSeries, title: 'WWWWWWWW' }));
  const inkA = a.dark(300, 0, 600, 28),
    inkB = b.dark(300, 0, 600, 28);
  assert.ok(inkA > 50 && inkB > 1.5 * inkA, `title ink: ${inkA} px for I, ${inkB} px for W`);
});

test('text is measured with the font resvg draws: the width of inked text matches', () => {
  for (const [text, size] of [
    ['MMMMMMMMMM', 20],
    ['validation NLL against training samples', 14],
    ['0.0001 1,000,000 bits', 12],
  ] as const) {
    const font = `${size}px '${FONT_FAMILY}'`;
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="60">` +
      `<text x="10" y="40" font-family="${FONT_FAMILY}" font-size="${size}">${text}</text></svg>`;
    const d = decodePng(svgToPng(svg));
    let left = d.w,
      right = -1;
    for (let x = 0; x < d.w; x++)
      if (d.dark(x, 0, x + 1, d.h) > 0) {
        left = Math.min(left, x);
        right = x;
      }
    // Ink spans the advance less the first glyph's left and the last glyph's right side bearing.
    const inked = right - left + 1;
    const measured = measureText(text, font);
    assert.ok(measured >= inked - 1 && measured - inked < 0.25 * size, `${text}: measured ${measured}, inked ${inked}`);
  }
  assert.ok(measureText('W', "bold 16px 'DejaVu Sans'") > measureText('W', "16px 'DejaVu Sans'"), 'bold is wider');
});
