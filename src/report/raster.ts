import { deflateSync } from 'node:zlib';
import { GLYPH_ADVANCE, GLYPH_H, GLYPH_ROWS, GLYPH_W, glyphColumns } from './font5x7.js';

export type Rgb = readonly [number, number, number];
/** '#rrggbb' (or '#rgb'), or an [r, g, b] triple of 0..255. */
export type Color = string | Rgb;

export interface TextOptions {
  /** Integer magnification of the 5x7 font: 1 is tiny, 2 is the label size. */
  scale?: number;
  align?: 'left' | 'center' | 'right';
  /**
   * Rotated 90 degrees counter-clockwise, reading bottom to top like a matplotlib y label. Then x is
   * the left edge of the rotated glyphs (where their top rows land) and y is the anchor along the text.
   */
  vertical?: boolean;
}

export function parseColor(c: Color): Rgb {
  if (typeof c !== 'string') return c;
  const s = c.trim();
  let m = /^#([0-9a-f]{6})$/i.exec(s);
  if (m) {
    const n = parseInt(m[1]!, 16);
    return [n >> 16, (n >> 8) & 255, n & 255];
  }
  m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(s);
  if (m) return [parseInt(m[1]! + m[1]!, 16), parseInt(m[2]! + m[2]!, 16), parseInt(m[3]! + m[3]!, 16)];
  throw new Error(`raster: unsupported colour ${JSON.stringify(c)} (use #rrggbb)`);
}

/** Pixel width of a string in the 5x7 font; code points, not UTF-16 units, so an emoji is one box. */
export function textWidth(str: string, scale = 1): number {
  const n = [...str].length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

export function textHeight(scale = 1): number {
  return GLYPH_H * scale;
}

/** A plain RGB framebuffer; everything outside it is silently clipped so callers need not bounds-check. */
export class Canvas {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;

  constructor(width: number, height: number, bg: Color = '#ffffff') {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`raster: canvas size must be positive integers, got ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, bg);
  }

  setPixel(x: number, y: number, color: Color): void {
    this.put(Math.round(x), Math.round(y), parseColor(color));
  }

  getPixel(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.pixels[i]!, this.pixels[i + 1]!, this.pixels[i + 2]!];
  }

  /** Covers pixels [x, x+w) x [y, y+h) after rounding the corners. */
  fillRect(x: number, y: number, w: number, h: number, color: Color): void {
    const rgb = parseColor(color);
    const x0 = Math.max(0, Math.round(x)),
      x1 = Math.min(this.width, Math.round(x + w));
    const y0 = Math.max(0, Math.round(y)),
      y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) this.put(px, py, rgb);
  }

  /** Outline whose edges run along columns x and x+w and rows y and y+h, like an SVG stroke there. */
  rect(x: number, y: number, w: number, h: number, color: Color, width = 1): void {
    this.line(x, y, x + w, y, color, width);
    this.line(x + w, y, x + w, y + h, color, width);
    this.line(x + w, y + h, x, y + h, color, width);
    this.line(x, y + h, x, y, color, width);
  }

  /** Bresenham with a square brush for thickness; no anti-aliasing, so colours stay exact and testable. */
  line(x0: number, y0: number, x1: number, y1: number, color: Color, width = 1): void {
    const rgb = parseColor(color);
    const bw = Math.max(1, Math.round(width));
    const off = Math.floor((bw - 1) / 2);
    let x = Math.round(x0),
      y = Math.round(y0);
    const xe = Math.round(x1),
      ye = Math.round(y1);
    const dx = Math.abs(xe - x),
      dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1,
      sy = y < ye ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      if (bw === 1) this.put(x, y, rgb);
      else for (let j = 0; j < bw; j++) for (let i = 0; i < bw; i++) this.put(x - off + i, y - off + j, rgb);
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /** A dash pattern ([on, off, ...] px) runs on across vertices, as SVG's stroke-dasharray does. */
  polyline(pts: readonly (readonly [number, number])[], color: Color, width = 1, dash?: readonly number[]): void {
    if (!dash?.length) {
      for (let i = 1; i < pts.length; i++)
        this.line(pts[i - 1]![0], pts[i - 1]![1], pts[i]![0], pts[i]![1], color, width);
      return;
    }
    let k = 0,
      left = dash[0]!;
    for (let i = 1; i < pts.length; i++) {
      let [x, y] = pts[i - 1]!;
      const [x1, y1] = pts[i]!;
      let len = Math.hypot(x1 - x, y1 - y);
      while (len > 1e-9) {
        const d = Math.min(left, len),
          f = d / len;
        const nx = x + (x1 - x) * f,
          ny = y + (y1 - y) * f;
        if (k % 2 === 0) this.line(x, y, nx, ny, color, width);
        [x, y, len, left] = [nx, ny, len - d, left - d];
        if (left <= 1e-9) left = Math.max(1e-3, dash[++k % dash.length]!);
      }
    }
  }

  /** Horizontal text has its glyph tops at row y; see TextOptions.vertical for the rotated case. */
  text(x: number, y: number, str: string, color: Color, opts: TextOptions = {}): void {
    const rgb = parseColor(color);
    const s = Math.max(1, Math.round(opts.scale ?? 1));
    const w = textWidth(str, s);
    const start = opts.align === 'center' ? -w / 2 : opts.align === 'right' ? -w : 0;
    const bx = Math.round(x),
      by = Math.round(y),
      a0 = Math.round(start);
    let i = 0;
    for (const ch of str) {
      const cols = glyphColumns(ch.codePointAt(0)!);
      for (let c = 0; c < GLYPH_W; c++) {
        for (let r = 0; r < GLYPH_ROWS; r++) {
          if (!((cols[c]! >> r) & 1)) continue;
          const along = a0 + (i * GLYPH_ADVANCE + c) * s;
          if (opts.vertical) this.block(bx + r * s, by - along - s, s, rgb);
          else this.block(bx + along, by + r * s, s, rgb);
        }
      }
      i++;
    }
  }

  toPng(): Buffer {
    const { width: w, height: h } = this;
    const stride = 1 + 3 * w;
    const raw = Buffer.alloc(h * stride);
    // Filter type 0 (none) on every row: deflate still squeezes the flat chart background well.
    for (let y = 0; y < h; y++) raw.set(this.pixels.subarray(y * 3 * w, (y + 1) * 3 * w), y * stride + 1);
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; // bits per channel
    ihdr[9] = 2; // colour type: truecolour RGB
    // bytes 10..12: deflate compression, adaptive filtering, no interlace (all 0)
    return Buffer.concat([
      PNG_SIGNATURE,
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', deflateSync(raw, { level: 9 })),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
  }

  private block(x: number, y: number, s: number, rgb: Rgb): void {
    for (let j = 0; j < s; j++) for (let i = 0; i < s; i++) this.put(x + i, y + j, rgb);
  }

  private put(x: number, y: number, rgb: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.pixels[i] = rgb[0];
    this.pixels[i + 1] = rgb[1];
    this.pixels[i + 2] = rgb[2];
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / PNG), the reflected 0xEDB88320 polynomial. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  // The CRC covers the type and the data, not the length.
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
