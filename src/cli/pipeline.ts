import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { z } from 'zod';
import { runInfo } from './info.js';
import { UsageError } from './options.js';
import { runPrepare } from './prepare.js';
import { runEval } from './eval.js';
import { runTrain, TRAIN_DEFAULTS } from './train.js';
import { describeModel, parseModelConfig } from '../models/registry.js';
import { summarizeRun, writeReport } from '../report/run-report.js';
import { writeFileAtomic } from '../util/atomic.js';

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
const TrainStepSpec = z.strictObject({
  /** corpus or audio, relative to workdir when it names a step output, else to the current folder */
  data: z.union([z.string(), z.array(z.string())]),
  run: z.string(),
  model: z.string().optional(),
  config: z.string().optional(),
  steps: z.number().int().positive().optional(),
  minutes: z.number().positive().optional(),
  batch: z.number().int().positive().optional(),
  lr: z.number().positive().optional(),
  minLr: z.number().positive().optional(),
  warmup: z.number().int().nonnegative().optional(),
  clip: z.number().nonnegative().optional(),
  accumulate: z.number().int().positive().optional(),
  validEvery: z.number().int().positive().optional(),
  validSamples: z.number().int().positive().optional(),
  checkpointEvery: z.number().int().positive().optional(),
  seed: z.number().int().nonnegative().optional(),
});
const EvalStep = z.strictObject({ run: z.string(), data: z.string().optional(), split: z.enum(['train', 'valid', 'test']).optional(), memory: z.number().int().nonnegative().optional(), compressedMemory: z.number().int().nonnegative().optional(), limitFiles: z.number().int().positive().optional(), engine: z.enum(['onnxruntime', 'tfjs']).optional() });
const ReportStep = z.strictObject({ runs: z.array(z.string()).min(1), out: z.string(), title: z.string().optional() });
const Step = z.union([
  z.strictObject({ prepare: PrepareStep }),
  z.strictObject({ info: InfoStep }),
  z.strictObject({ train: TrainStepSpec }),
  z.strictObject({ eval: EvalStep }),
  z.strictObject({ report: ReportStep }),
]);
export const PipelineFile = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  /** outputs (corpus, runs, plots) are written relative to this folder */
  workdir: z.string(),
  steps: z.array(Step).min(1),
});
export type PipelineFile = z.infer<typeof PipelineFile>;

const STEP_KINDS = ['prepare', 'info', 'train', 'eval', 'report'];

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
    } else if ('info' in step) {
      const s = step.info;
      console.log(`\n== step ${i + 1}/${p.steps.length}: info ${inWork(s.corpus)}`);
      runInfo(inWork(s.corpus), { plot: s.plot === null ? null : s.plot ? inWork(s.plot) : undefined });
    } else if ('train' in step) {
      const s = step.train;
      // A data path that a previous step wrote lives in workdir; anything else is the user's audio.
      const data = (Array.isArray(s.data) ? s.data : [s.data]).map((d) => (fs.existsSync(inWork(d)) ? inWork(d) : d));
      console.log(`\n== step ${i + 1}/${p.steps.length}: train ${s.model ?? s.config ?? 'ct-cpu'} on ${data.join(' ')} -> ${inWork(s.run)}`);
      const d = TRAIN_DEFAULTS;
      await runTrain(data, {
        model: s.model ?? 'ct-cpu', config: s.config, run: inWork(s.run), steps: s.steps ?? d.steps, minutes: s.minutes, batch: s.batch ?? d.batch, lr: s.lr ?? d.lr, minLr: s.minLr ?? d.minLr,
        warmup: s.warmup ?? d.warmup, clip: s.clip ?? d.clip, accumulate: s.accumulate ?? d.accumulate, validEvery: s.validEvery ?? d.validEvery, validSamples: s.validSamples ?? d.validSamples,
        checkpointEvery: s.checkpointEvery ?? d.checkpointEvery, seed: s.seed ?? d.seed, backend: 'auto',
      });
    } else if ('eval' in step) {
      const s = step.eval;
      const split = s.split ?? 'test';
      console.log(`\n== step ${i + 1}/${p.steps.length}: eval ${inWork(s.run)} on ${s.data ?? 'its corpus'} (${split})`);
      const r = await runEval({ run: inWork(s.run), data: s.data ? (fs.existsSync(inWork(s.data)) ? inWork(s.data) : s.data) : undefined, split, memory: s.memory, compressedMemory: s.compressedMemory, batch: 8, backend: 'auto', engine: s.engine ?? 'onnxruntime', device: 'auto', limitFiles: s.limitFiles });
      writeFileAtomic(path.join(inWork(s.run), `eval-${split}.json`), JSON.stringify(r, null, 2) + '\n');
    } else {
      const s = step.report;
      const out = inWork(s.out);
      console.log(`\n== step ${i + 1}/${p.steps.length}: report -> ${out}`);
      const summaries = s.runs.map((r) => summarizeRun(r, inWork(r), (cfg) => {
        const c = parseModelConfig(cfg);
        const text = describeModel(c);
        return { model: text.split(': ')[0], params: (/([\d.]+M) parameters/.exec(text) ?? ['', '?'])[1] };
      }));
      writeReport(out, s.title ?? `ctspeech: ${p.name}`, summaries);
      console.log(`report written: ${out}`);
    }
  }
}
