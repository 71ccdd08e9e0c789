/**
 * SVG to PNG through resvg, with the DejaVu fonts that ship in an npm package: text renders the
 * same on a machine without system fonts (CI, containers) as on a desktop.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import opentype, { type Font } from 'opentype.js';

const require = createRequire(import.meta.url);
const FONT_DIR = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');

/** The family every SVG we draw names, so the PNG and the browser pick the same face. */
export const FONT_FAMILY = 'DejaVu Sans';
export const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => path.join(FONT_DIR, f));

/** Rasterise an SVG document at its own size. */
export function svgToPng(svg: string): Uint8Array {
  const r = new Resvg(svg, {
    font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
    fitTo: { mode: 'original' },
    background: 'white',
  });
  return new Uint8Array(r.render().asPng());
}

let faces: { regular: Font; bold: Font } | null = null;

/**
 * The width in px of `text` in a CSS font such as "bold 16px 'DejaVu Sans'", from the same DejaVu
 * files resvg draws with: a layout computed on the server (legend spacing, label room) then fits
 * the text the PNG shows.
 */
export function measureText(text: string, font: string): number {
  faces ??= {
    regular: opentype.parse(new Uint8Array(fs.readFileSync(FONT_FILES[0])).buffer),
    bold: opentype.parse(new Uint8Array(fs.readFileSync(FONT_FILES[1])).buffer),
  };
  const size = Number(/(\d+(?:\.\d+)?)px/.exec(font)?.[1] ?? 12);
  const face = /\b(bold|[6-9]00)\b/.test(font) ? faces.bold : faces.regular;
  // Per-character advances (no shaping: opentype.js 2.0 cannot apply DejaVu's GSUB contextual
  // lookups, and Latin labels need none); kerning is left out, a fraction of a pixel per pair.
  let units = 0;
  for (const c of text) units += face.charToGlyph(c).advanceWidth ?? face.unitsPerEm / 2;
  return (units * size) / face.unitsPerEm;
}
