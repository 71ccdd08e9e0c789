/** Small corpora for the tests that run real trainings and prepares as processes. */
import fs from 'node:fs';
import path from 'node:path';
import { decodeAudio } from '../src/audio/decode.js';
import { writeWav } from '../src/audio/wav.js';
import { readCorpus } from '../src/data/corpus-files.js';
import { readManifest, SPLITS } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { SAMPLES, tempDir } from './helpers.js';

/** A prepared corpus of three 1.5 s clips of real speech (two train, one valid): trains in seconds. */
export async function smallCorpus(): Promise<string> {
  const audio = path.join(tempDir(), 'audio');
  for (const rel of ['train/vm-review.wav', 'train/vm-msginstruct.wav', 'valid/vm-tempgreeting2.wav']) {
    const a = await decodeAudio(path.join(SAMPLES, rel), 16000);
    fs.mkdirSync(path.join(audio, path.dirname(rel)), { recursive: true });
    writeWav(path.join(audio, rel), a.samples.subarray(0, 24000), 16000);
  }
  const out = path.join(tempDir(), 'corpus');
  await prepareCorpus({ inputs: [audio], out, workers: 1 });
  return out;
}

/** Each file's split and codes, whatever the generation names: what a reader of the corpus sees. */
export function corpusContent(corpus: string): Record<string, string> {
  const m = readManifest(corpus);
  const out: Record<string, string> = {};
  for (const split of SPLITS) {
    if (!m.files.some((f) => f.split === split)) continue;
    for (const f of readCorpus(corpus, split).files)
      out[f.path] = `${split}:${Buffer.from(f.codes).toString('base64')}`;
  }
  return out;
}
