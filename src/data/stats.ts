import fs from 'node:fs';
import { NUM_CODES } from '../audio/mulaw.js';
import { CorpusError, filesOf, openSplitBinary, type Manifest, SPLITS, type Split } from './manifest.js';

export interface SplitStats {
  split: Split;
  files: number;
  samples: number;
  hours: number;
  /** count of each mu-law code */
  histogram: number[];
  /** unigram entropy of the codes: the NLL per sample of a model that ignores context */
  entropyNats: number;
  entropyBits: number;
}

/** -sum p ln p over the codes that occur; 0 for an empty histogram. */
export function entropyNats(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total === 0) return 0;
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0) {
      const p = counts[i] / total;
      h -= p * Math.log(p);
    }
  }
  return h;
}

/** Histogram of one split, read in blocks so a large corpus is never loaded whole. */
export function splitHistogram(corpusDir: string, m: Manifest, split: Split): Float64Array {
  const counts = new Float64Array(NUM_CODES);
  const total = filesOf(m, split).reduce((a, f) => a + f.length, 0);
  if (total === 0) return counts;
  const fd = openSplitBinary(corpusDir, m, split);
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let pos = 0; pos < total;) {
      const got = fs.readSync(fd, buf, 0, Math.min(buf.length, total - pos), pos);
      if (got <= 0)
        throw new CorpusError(
          `corpus ${corpusDir} is damaged: ${m.binaries[split]} ends at byte ${pos}, ` +
            `but the manifest lists ${total} codes; re-run prepare with --force`,
        );
      for (let i = 0; i < got; i++) counts[buf[i]]++;
      pos += got;
    }
  } finally {
    fs.closeSync(fd);
  }
  return counts;
}

export function corpusStats(corpusDir: string, m: Manifest): SplitStats[] {
  return SPLITS.map((split) => {
    const files = filesOf(m, split);
    const samples = files.reduce((a, f) => a + f.length, 0);
    const counts = splitHistogram(corpusDir, m, split);
    const h = entropyNats(counts);
    return {
      split,
      files: files.length,
      samples,
      hours: samples / m.settings.sampleRate / 3600,
      histogram: Array.from(counts),
      entropyNats: h,
      entropyBits: h / Math.LN2,
    };
  });
}
