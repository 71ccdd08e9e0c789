/**
 * A dark-to-light colour ramp for spectrograms, computed here rather than copied: lightness rises
 * linearly in OKLab (Björn Ottosson's perceptual space, public-domain formulas), so equal steps in dB
 * read as equal steps in brightness, and hue turns from indigo through magenta and orange to pale
 * yellow (the look of matplotlib's magma, but not its table). Our own code and anchors, MIT like the
 * project; no third-party data.
 */

/** sRGB anchors along the ramp; only their hue and chroma (OKLab a, b) are used, lightness is linear. */
const ANCHORS = ['#040210', '#2a0f5c', '#6e1f81', '#b8326e', '#ee5a45', '#fca050', '#fcf3b0'];

type Lab = [number, number, number];

function toLinear(c: number): number {
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

function fromLinear(c: number): number {
  const x = Math.min(1, Math.max(0, c));
  return x <= 0.0031308 ? 12.92 * x : 1.055 * Math.pow(x, 1 / 2.4) - 0.055;
}

function hexToOklab(hex: string): Lab {
  const [r, g, b] = [1, 3, 5].map((i) => toLinear(parseInt(hex.slice(i, i + 2), 16) / 255));
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

function oklabToRgb([L, a, b]: Lab): [number, number, number] {
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const rgb = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  return rgb.map((c) => Math.round(fromLinear(c) * 255)) as [number, number, number];
}

/** 256 RGB triples, index 0 (quietest) to 255 (loudest): COLORMAP[3 * i + channel]. */
export const COLORMAP: Uint8Array = (() => {
  const labs = ANCHORS.map(hexToOklab);
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    const x = t * (labs.length - 1);
    const k = Math.min(labs.length - 2, Math.floor(x));
    const f = x - k;
    const L = labs[0][0] + t * (labs[labs.length - 1][0] - labs[0][0]);
    const a = labs[k][1] + f * (labs[k + 1][1] - labs[k][1]);
    const b = labs[k][2] + f * (labs[k + 1][2] - labs[k][2]);
    out.set(oklabToRgb([L, a, b]), 3 * i);
  }
  return out;
})();
