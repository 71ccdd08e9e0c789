/** Pipeline steps that are not commands of their own: the attention analysis and corpus prompts. */
import path from 'node:path';
import type { Split } from '../data/manifest.js';
import { attentionByAge, attentionChart } from '../infer/attention.js';
import { loadModel } from '../models/model-files.js';
import { withAttentionMemory } from '../models/registry.js';
import { chartPng } from '../report/chart.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readCorpus } from '../data/corpus-files.js';

/** The codes of a split's first file: a prompt taken from held-out audio without decoding again. */
export function firstFileCodes(corpus: string, split: Split): { path: string; codes: Uint8Array } {
  return readCorpus(corpus, split, 1).files[0];
}

/**
 * The paper's analysis of whether old memories are used (attention weight by memory age), for a
 * transformer run, written as <run>/attention.json and attention.png. WaveNet runs have no memory.
 */
export async function runAttentionStep(run: string, corpus: string, split: Split, segments: number): Promise<void> {
  const { cfg, params } = loadModel(run);
  const transformer = withAttentionMemory(cfg, `attention step: ${run}`);
  const { files } = readCorpus(corpus, split);
  const profile = await attentionByAge(transformer, params, files, { maxSegments: segments });
  writeFileAtomic(path.join(run, 'attention.json'), JSON.stringify(profile, null, 2) + '\n');
  writeFileAtomic(
    path.join(run, 'attention.png'),
    chartPng(attentionChart(profile, `attention by memory age: ${path.basename(run)}`)),
  );
  const line = profile.regions
    .map((r) => `${r.name} ${(100 * r.mass).toFixed(1)}% (${r.perSlot.toExponential(2)}/slot)`)
    .join(', ');
  console.log(`attention over ${profile.counted} full-memory segments: ${line}`);
}
