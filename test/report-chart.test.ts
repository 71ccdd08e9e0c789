import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { chartPng, chartSvg, niceTicks, PALETTE, type LineChart } from '../src/report/chart.js';
import { Canvas, crc32 } from '../src/report/raster.js';

// Bit-at-a-time CRC-32 straight from the PNG spec's definition, so it shares no table with raster.ts.
function crcBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

interface Decoded {
  w: number;
  h: number;
  px: (x: number, y: number) => string;
  colours: Set<string>;
}

/** An independent decoder for exactly what the spec asks raster.ts to write: 8-bit RGB, filter 0 rows. */
function decodePng(png: Buffer): Decoded {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'signature');
  const types: string[] = [];
  const idat: Buffer[] = [];
  let w = 0,
    h = 0;
  for (let at = 8; at < png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + len);
    assert.equal(png.readUInt32BE(at + 8 + len), crcBitwise(png.subarray(at + 4, at + 8 + len)), `CRC of ${type}`);
    types.push(type);
    if (type === 'IHDR') {
      w = data.readUInt32BE(0);
      h = data.readUInt32BE(4);
      assert.deepEqual([...data.subarray(8)], [8, 2, 0, 0, 0], 'IHDR: 8-bit RGB, no interlace');
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  assert.equal(types[0], 'IHDR');
  assert.equal(types.at(-1), 'IEND');
  const raw = inflateSync(Buffer.concat(idat));
  assert.equal(raw.length, h * (1 + 3 * w), 'decompressed size is h*(1+3w)');
  const colours = new Set<string>();
  for (let y = 0; y < h; y++) {
    assert.equal(raw[y * (1 + 3 * w)], 0, `row ${y} uses filter 0`);
  }
  const px = (x: number, y: number) => {
    const i = y * (1 + 3 * w) + 1 + 3 * x;
    return '#' + [raw[i]!, raw[i + 1]!, raw[i + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('');
  };
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) colours.add(px(x, y));
  return { w, h, px, colours };
}

function setPixels(cv: Canvas, bg = '#ffffff'): Set<string> {
  const d = decodePng(cv.toPng());
  const on = new Set<string>();
  for (let y = 0; y < d.h; y++) for (let x = 0; x < d.w; x++) if (d.px(x, y) !== bg) on.add(`${x},${y}`);
  return on;
}

test('table CRC-32 agrees with the bitwise definition and the well-known check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 255));
  assert.equal(crc32(bytes), crcBitwise(bytes));
});

test('PNG: valid chunks, sizes, and a filled rectangle has its exact colour', () => {
  const cv = new Canvas(31, 17, '#102030');
  cv.fillRect(5, 4, 10, 6, '#ff8000');
  const d = decodePng(cv.toPng());
  assert.equal(d.w, 31);
  assert.equal(d.h, 17);
  assert.equal(d.px(5, 4), '#ff8000');
  assert.equal(d.px(14, 9), '#ff8000', 'last pixel inside [x, x+w) x [y, y+h)');
  assert.equal(d.px(15, 9), '#102030', 'just right of the rectangle');
  assert.equal(d.px(14, 10), '#102030', 'just below the rectangle');
  assert.equal(d.px(0, 0), '#102030');
  assert.deepEqual(d.colours, new Set(['#102030', '#ff8000']));
});

test('a 1-px line from (0,0) to (9,9) sets exactly the diagonal', () => {
  const cv = new Canvas(12, 12);
  cv.line(0, 0, 9, 9, '#000000', 1);
  const expected = new Set(Array.from({ length: 10 }, (_, i) => `${i},${i}`));
  assert.deepEqual(setPixels(cv), expected);
});

test('a thick line covers more than the thin one, and drawing off-canvas does not throw', () => {
  const cv = new Canvas(20, 20);
  cv.line(2, 10, 17, 10, '#000000', 3);
  // The 3x3 brush is centred on each pixel of the line, so it also reaches one pixel past each end.
  assert.equal(setPixels(cv).size, 18 * 3);
  cv.line(-50, -50, 100, 100, '#000000', 2);
  cv.fillRect(-5, -5, 100, 3, '#000000');
});

test('text: "1" and "7" differ, glyphs stay in their cell, unknown characters do not throw', () => {
  const draw = (s: string) => {
    const cv = new Canvas(20, 20);
    cv.text(2, 2, s, '#000000', { scale: 1 });
    return setPixels(cv);
  };
  const one = draw('1'),
    seven = draw('7');
  assert.ok(one.size > 3 && seven.size > 3, 'both glyphs draw something');
  assert.notDeepEqual(one, seven);
  for (const p of [...one, ...seven]) {
    const [x, y] = p.split(',').map(Number) as [number, number];
    assert.ok(x >= 2 && x < 7 && y >= 2 && y < 9, `pixel ${p} inside the 5x7 cell at (2,2)`);
  }
  assert.equal(draw(' ').size, 0, 'space is blank');
  assert.doesNotThrow(() => draw('\u00e9\u{1F600}\t'));
  assert.ok(draw('\u00e9').size > 0, 'a missing glyph shows as a box, not nothing');
});

test('text scale, alignment and vertical rotation', () => {
  const cv1 = new Canvas(40, 40),
    cv2 = new Canvas(40, 40);
  cv1.text(0, 0, 'E', '#000000', { scale: 1 });
  cv2.text(0, 0, 'E', '#000000', { scale: 2 });
  assert.equal(setPixels(cv2).size, 4 * setPixels(cv1).size);
  const right = new Canvas(40, 10);
  right.text(30, 0, 'AB', '#000000', { align: 'right' });
  assert.equal(
    Math.max(...[...setPixels(right)].map((p) => Number(p.split(',')[0]))),
    29,
    'right-aligned text ends left of x',
  );
  const vert = new Canvas(20, 40);
  vert.text(5, 30, 'AB', '#000000', { vertical: true });
  const ps = [...setPixels(vert)].map((p) => p.split(',').map(Number) as [number, number]);
  // Rotated counter-clockwise: 11 px of text run upwards from y=30, 7 rows of glyph run rightwards from x=5.
  assert.equal(Math.min(...ps.map((p) => p[1])), 30 - 11);
  assert.equal(Math.max(...ps.map((p) => p[1])), 29);
  assert.ok(ps.every(([x]) => x >= 5 && x < 12));
});

test('niceTicks picks 1/2/5 x 10^k steps that cover the range', () => {
  const t = niceTicks(0, 7.3, 5);
  const ok = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
    [0, 2, 4, 6, 8],
  ].some((e) => JSON.stringify(e) === JSON.stringify(t));
  assert.ok(ok, `got ${t}`);
  for (const [lo, hi, n] of [
    [0.013, 0.0871, 6],
    [-3, 1234, 5],
    [2.2, 2.3, 4],
    [1e5, 2.5e5, 5],
  ] as const) {
    const ticks = niceTicks(lo, hi, n);
    const step = ticks[1]! - ticks[0]!;
    const mant = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok(
      [1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6),
      `step ${step} for [${lo}, ${hi}]`,
    );
    assert.ok(ticks[0]! <= lo && ticks.at(-1)! >= hi, `[${ticks[0]}, ${ticks.at(-1)}] covers [${lo}, ${hi}]`);
    assert.ok(ticks.length >= 2 && ticks.length <= 2 * n + 1);
  }
  assert.deepEqual(
    niceTicks(0.1, 0.7, 6),
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    'no float noise like 0.30000000000000004',
  );
  assert.ok(niceTicks(5, 5, 5).length >= 2, 'degenerate range still gets ticks');
});

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

test('chartSvg is a standalone document with escaped title and names', () => {
  const svg = chartSvg(twoSeries);
  assert.ok(svg.startsWith('<svg'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(svg.includes('Loss &lt;train &amp; valid&gt;'));
  assert.ok(svg.includes('&lt;&amp;&gt;'));
  assert.ok(!svg.includes('a<&>b'));
  assert.ok(svg.includes('>valid<'));
  assert.ok(/<rect[^>]*fill="#ffffff"/.test(svg), 'white background');
  assert.ok(svg.includes(`stroke="${PALETTE[1]}"`), 'second series without colour takes the palette');
  assert.ok(svg.includes('stroke-dasharray'), 'dashed series is dashed');
  assert.equal(svg.split('<text').length - 1, svg.split('</text>').length - 1);
  assert.ok(!svg.includes('NaN'), 'non-finite points are skipped, not written');
});

function polylinePoints(svg: string, colour: string): [number, number][][] {
  const out: [number, number][][] = [];
  for (const m of svg.matchAll(/<polyline points="([^"]*)"[^>]*stroke="([^"]*)"/g)) {
    if (m[2] === colour) out.push(m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]));
  }
  return out;
}

test('log axis skips non-positive and non-finite values, with 1e-k labels', () => {
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
  const svg = chartSvg(c);
  const lines = polylinePoints(svg, '#123456');
  // One polyline for the data, one for the legend swatch (always two points, at equal y).
  const data = lines.filter((l) => l.length !== 2 || l[0]![1] !== l[1]![1]);
  assert.equal(data.length, 1);
  assert.equal(data[0]!.length, 3);
  assert.ok(data[0]!.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  assert.ok(data[0]![0]![1] > data[0]![1]![1] && data[0]![1]![1] > data[0]![2]![1], 'larger values are higher up');
  assert.ok(svg.includes('>1e-4<'), 'power-of-ten labels like 1e-4');
});

test('empty charts render axes and a no-data note instead of throwing', () => {
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
    decodePng(chartPng(c));
  }
});

test('bar chart: one bar per finite category, labelled', () => {
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
  assert.equal((svg.match(/<rect[^>]*fill="#00aa00"/g) ?? []).length, 1);
  assert.ok(svg.includes('>WaveNet<') && svg.includes('>TXL<') && !svg.includes('>bad<'));
  assert.ok(decodePng(chartPng(c)).colours.has('#00aa00'));
});

test('explicit x ticks get exact labels; a long curve is thinned but keeps its extremes', () => {
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
  for (const l of ['0', '0.25', '0.5']) assert.ok(ticks.includes(`>${l}<`), `tick label ${l}`);
  // 100k points in [0, 1] with one spike to 10: the y axis tops out at 10, so the spike must touch the frame.
  const points = Array.from({ length: 100000 }, (_, i) => [i, i === 54321 ? 10 : (i % 97) / 97] as [number, number]);
  const svg = chartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', color: '#654321', points }] });
  const frameTop = Number(/<rect x="[^"]*" y="([^"]*)"[^>]*fill="none" stroke="#222222"/.exec(svg)![1]);
  const line = polylinePoints(svg, '#654321').sort((a, b) => b.length - a.length)[0]!;
  assert.ok(line.length < 5000, `${line.length} points written`);
  assert.equal(Math.min(...line.map((p) => p[1])), frameTop);
  assert.ok(svg.length < 200_000);
});

test('chartPng of a two-series chart is a valid PNG showing both series colours', () => {
  const d = decodePng(chartPng(twoSeries));
  assert.equal(d.w, 900);
  assert.equal(d.h, 420);
  assert.equal(d.px(0, 0), '#ffffff');
  assert.ok(d.colours.has('#d62728'), 'explicit colour');
  assert.ok(d.colours.has(PALETTE[1]!), 'palette colour of the uncoloured series');
  const small = decodePng(chartPng({ ...twoSeries, width: 400, height: 250 }));
  assert.equal(small.w, 400);
  assert.equal(small.h, 250);
});
