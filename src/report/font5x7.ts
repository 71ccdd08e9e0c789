/**
 * The classic public-domain 5x7 LCD font for printable ASCII 32..126 (with '~' as a real tilde
 * rather than the arrow many copies carry). Stored column-major, five columns of one byte each,
 * bit 0 = top row, as 10 hex digits per glyph: that keeps the whole table to a dozen source lines.
 * g j p q y use an eighth row (bit 7) for a real descender: squeezed into seven rows, "training
 * step" in an axis label reads as "trainin9 ste".
 */
const HEX =
  '000000000000005f00000007000700147f147f14242a7f2a12231308646236495522500005030000001c2241000041221c00' +
  '082a1c2a0808083e080800503000000808080808006060000020100804023e5149453e00427f400042615149462141454b31' +
  '1814127f1027454545393c4a49493001710905033649494936064949291e0036360000005636000000081422411414141414' +
  '41221408000201510906324979413e7e1111117e7f494949363e414141227f4141221c7f494949417f090901013e41415132' +
  '7f0808087f00417f41002040413f017f081422417f404040407f0204027f7f0408107f3e4141413e7f090909063e4151215e' +
  '7f09192946464949493101017f01013f4040403f1f2040201f7f2018207f63140814630304780403615149454300007f4141' +
  '020408102041417f000004020102044040404040000102040020545454787f484444383844444420384444487f3854545418' +
  '087e09010218a4a4a47c7f0804047800447d40004080847d00007f10284400417f40007c041804787c080404783844444438' +
  'fc2424241818242424fc7c080404084854545420043f4440203c4040207c1c2040201c3c4030403c44281028441ca0a0a07c' +
  '4464544c44000836410000007f000000413608000804081008';

export const GLYPH_W = 5;
/** Cap height; descenders reach one row further (GLYPH_ROWS). */
export const GLYPH_H = 7;
export const GLYPH_ROWS = 8;
/** Horizontal advance per character: the glyph plus one blank column. */
export const GLYPH_ADVANCE = 6;

// A hollow box, so characters the font lacks stay visible as "something was here" instead of vanishing.
const MISSING = [0x7f, 0x41, 0x41, 0x41, 0x7f];

/** The five column bytes of a code point's glyph (bit 0 = top row); a hollow box when not covered. */
export function glyphColumns(codePoint: number): readonly number[] {
  return codePoint >= 32 && codePoint <= 126 ? TABLE[codePoint - 32]! : MISSING;
}

const TABLE: number[][] = Array.from({ length: 95 }, (_, g) =>
  Array.from({ length: GLYPH_W }, (_, c) => parseInt(HEX.slice(g * 10 + 2 * c, g * 10 + 2 * c + 2), 16)),
);
