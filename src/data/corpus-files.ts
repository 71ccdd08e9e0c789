/** Reading a prepared corpus back: the codes of a split's files, for evaluation, prompts and analysis. */
import fs from 'node:fs';
import { CorpusError, filesOf, openSplitBinary, readManifest, SPLITS, type Split } from './manifest.js';

/** Models are trained on 16 kHz mu-law codes. */
export const MODEL_RATE = 16000;

/** One file of a corpus split: its source path (relative to the prepared folder) and its codes. */
export interface CorpusFile {
  path: string;
  codes: Uint8Array;
}

/** The files of a split in manifest order (the first `limit` of them), read whole. */
export function readCorpus(corpus: string, split: Split, limit?: number): { files: CorpusFile[]; source: string } {
  const m = readManifest(corpus);
  if (m.settings.sampleRate !== MODEL_RATE)
    console.error(
      `warning: corpus ${corpus} is at ${m.settings.sampleRate} Hz; models are trained on ${MODEL_RATE} Hz codes`,
    );
  const entries = filesOf(m, split).slice(0, limit ?? Infinity);
  if (entries.length === 0)
    throw new CorpusError(
      `split ${split} of corpus ${corpus} has no files; choose another split (${SPLITS.join(', ')})`,
    );
  const fd = openSplitBinary(corpus, m, split);
  try {
    const files = entries.map((e) => {
      const codes = new Uint8Array(e.length);
      const got = fs.readSync(fd, codes, 0, e.length, e.offset);
      if (got !== e.length)
        throw new CorpusError(
          `corpus ${corpus} is damaged: ${m.binaries[split]} ends before ${e.path}; re-run prepare with --force`,
        );
      return { path: e.path, codes };
    });
    return { files, source: `${corpus} (${split})` };
  } finally {
    fs.closeSync(fd);
  }
}
