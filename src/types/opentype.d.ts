// The part of opentype.js (which ships no types) that text measurement uses.
declare module 'opentype.js' {
  export interface Font {
    unitsPerEm: number;
    charToGlyph(c: string): { advanceWidth?: number };
  }
  const opentype: { parse(buffer: ArrayBuffer): Font };
  export default opentype;
}
