/**
 * SVG to PNG through resvg, with the DejaVu fonts that ship in an npm package: text renders the
 * same on a machine without system fonts (CI, containers) as on a desktop.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';

const require = createRequire(import.meta.url);
const FONT_DIR = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');

/** The family every SVG we draw names, so the PNG and the browser pick the same face. */
export const FONT_FAMILY = 'DejaVu Sans';
export const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => path.join(FONT_DIR, f));

/** Rasterise an SVG document at its own size (or `width` px wide, height in proportion). */
export function svgToPng(svg: string, width?: number): Uint8Array {
  const r = new Resvg(svg, {
    font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
    fitTo: width ? { mode: 'width', value: width } : { mode: 'original' },
    background: 'white',
  });
  return new Uint8Array(r.render().asPng());
}
