import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { z } from 'zod';
import { runInfo } from './info.js';
import { UsageError } from './options.js';
import { runPrepare } from './prepare.js';

const PrepareStep = z.strictObject({
  inputs: z.array(z.string()).min(1),
  out: z.string(),
  sampleRate: z.number().int().positive().optional(),
  validFraction: z.number().min(0).lt(1).optional(),
  testFraction: z.number().min(0).lt(1).optional(),
  trimDb: z.number().lt(0).nullable().optional(),
  workers: z.number().int().positive().optional(),
});
const InfoStep = z.strictObject({ corpus: z.string(), plot: z.string().nullable().optional() });
const Step = z.union([z.strictObject({ prepare: PrepareStep }), z.strictObject({ info: InfoStep })]);
export const PipelineFile = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  /** outputs (corpus, runs, plots) are written relative to this folder */
  workdir: z.string(),
  steps: z.array(Step).min(1),
});
export type PipelineFile = z.infer<typeof PipelineFile>;

const STEP_KINDS = ['prepare', 'info'];

export function loadPipeline(file: string): PipelineFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`pipeline file ${file} cannot be read`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid YAML: ${(e as Error).message}`);
  }
  const parsed = PipelineFile.safeParse(doc);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const where = i.path.join('.') || '(top level)';
      return i.code === 'invalid_union' ? `${where}: each step must be one of ${STEP_KINDS.join(', ')} with its known fields` : `${where}: ${i.message}`;
    });
    throw new UsageError(`${file}: ${msgs.join('; ')}`);
  }
  return parsed.data;
}

export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .summary('run a whole experiment described in a YAML file')
    .description(
      'Run the steps of a pipeline file in order. Inputs are read relative to the current folder;\n' +
        'everything a step writes goes under the file\'s `workdir` (override with --workdir).\n' +
        `Step kinds: ${STEP_KINDS.join(', ')}.`,
    )
    .argument('<file>', 'a pipeline YAML, e.g. pipelines/quickstart.yaml')
    .option('--workdir <dir>', 'write outputs here instead of the file\'s workdir')
    .action(async (file: string, o: { workdir?: string }) => {
      await runPipeline(loadPipeline(file), o.workdir);
    });
}

export async function runPipeline(p: PipelineFile, workdirOverride?: string): Promise<void> {
  const work = workdirOverride ?? p.workdir;
  const inWork = (x: string) => (path.isAbsolute(x) ? x : path.join(work, x));
  fs.mkdirSync(work, { recursive: true });
  console.log(`== pipeline ${p.name} (outputs in ${work})`);
  for (const [i, step] of p.steps.entries()) {
    if ('prepare' in step) {
      const s = step.prepare;
      console.log(`\n== step ${i + 1}/${p.steps.length}: prepare ${s.inputs.join(' ')} -> ${inWork(s.out)}`);
      await runPrepare({ inputs: s.inputs, out: inWork(s.out), sampleRate: s.sampleRate, validFraction: s.validFraction, testFraction: s.testFraction, trimDb: s.trimDb ?? null, workers: s.workers });
    } else {
      const s = step.info;
      console.log(`\n== step ${i + 1}/${p.steps.length}: info ${inWork(s.corpus)}`);
      runInfo(inWork(s.corpus), { plot: s.plot === null ? null : s.plot ? inWork(s.plot) : undefined });
    }
  }
}
