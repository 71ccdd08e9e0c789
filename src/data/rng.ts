/**
 * Small seeded PRNG for data sampling: xoshiro128** (Blackman & Vigna) on four uint32 words,
 * seeded through splitmix32 so that nearby integer seeds give unrelated streams.
 * Its whole state is four numbers, so a training checkpoint can store it as JSON and resume
 * the exact sequence.
 */

/** JSON-serializable generator state: the four xoshiro128** words (uint32, not all zero). */
export interface RngState {
  s: [number, number, number, number];
}

const TWO32 = 0x1_0000_0000;
const TWO53 = 2 ** 53;

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private readonly s = new Uint32Array(4);

  constructor(seed: number | RngState) {
    if (typeof seed === 'number') {
      if (!Number.isSafeInteger(seed)) throw new Error(`Rng seed must be a safe integer, got ${seed}`);
      // Fold the high bits in too, so seeds that differ only above bit 31 still differ.
      const hi = Math.floor(seed / TWO32) >>> 0;
      const mix = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2f));
      for (let i = 0; i < 4; i++) this.s[i] = mix();
      // The all-zero state is a fixed point of xoshiro; splitmix32 is a bijection per step, so
      // this is practically unreachable, but a fixed point would be silent, so guard anyway.
      if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
    } else {
      const w = seed?.s;
      if (
        !Array.isArray(w) ||
        w.length !== 4 ||
        !w.every((v) => Number.isInteger(v) && v >= 0 && v < TWO32) ||
        w.every((v) => v === 0)
      ) {
        throw new Error(`invalid Rng state ${JSON.stringify(seed)}: expected { s: [4 uint32, not all zero] }`);
      }
      this.s.set(w);
    }
  }

  nextU32(): number {
    const s = this.s;
    const s1 = s[1];
    const r = Math.imul(s1, 5);
    const rot = (r << 7) | (r >>> 25);
    const result = Math.imul(rot, 9) >>> 0;
    const t = s1 << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextU32() / TWO32;
  }

  /**
   * Uniform integer in [0, n) for 1 <= n <= 2^53, unbiased by rejection. n above 2^32 matters:
   * a multi-GB split is sampled by sample index.
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO53)
      throw new Error(`Rng.nextInt: n must be an integer in [1, 2^53], got ${n}`);
    if (n <= TWO32) {
      const limit = TWO32 - (TWO32 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    // Doubles represent 2^53 and every integer below it exactly, and % on them is exact.
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const x = (this.nextU32() >>> 11) * TWO32 + this.nextU32();
      if (x < limit) return x % n;
    }
  }

  state(): RngState {
    return { s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }
}
