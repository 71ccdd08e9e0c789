// The part of opentype.js (which ships no types) that text measurement uses.
declare module 'opentype.js' {
  export interface Font {
    unitsPerEm: number;
    charToGlyph(c: string): { advanceWidth?: number };
  }
  function parse(buffer: ArrayBuffer): Font;
  const opentype: { parse: typeof parse };
  export default opentype;
}
