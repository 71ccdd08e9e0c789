/** The pipeline file: its schema, variables and loading, with errors that name the file and field. */
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { UsageError } from './options.js';
import { NUM_CODES } from '../util/codes.js';

export const PrepareStep = z.strictObject({
  inputs: z.array(z.string()).min(1),
  out: z.string(),
  sampleRate: z.number().int().positive().optional(),
  validFraction: z.number().min(0).lt(1).optional(),
  testFraction: z.number().min(0).lt(1).optional(),
  trimDb: z.number().lt(0).nullable().optional(),
  workers: z.number().int().positive().optional(),
});
/**
 * `seeds: "0,1,2"` on a train, eval, generate, attention or report step runs it once per seed, on
 * the run folder `<run>-seed<s>` (a train step also trains with that seed); the report then gives
 * each model's mean and spread over its seeds.
 */
const Seeds = z
  .union([z.number().int().nonnegative(), z.string()])
  .transform((v, ctx) => {
    const list = String(v)
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
    if (!list.length || list.some((x) => !/^\d+$/.test(x))) {
      ctx.addIssue({
        code: 'custom',
        message: `seeds must be a comma-separated list of non-negative integers, got "${v}"`,
      });
      return z.NEVER;
    }
    const seeds = list.map(Number);
    if (seeds.some((x) => !Number.isSafeInteger(x))) {
      ctx.addIssue({ code: 'custom', message: `seeds must be integers below 2^53, got "${v}"` });
      return z.NEVER;
    }
    if (new Set(seeds).size !== seeds.length) {
      ctx.addIssue({ code: 'custom', message: `seeds "${v}" names a seed twice` });
      return z.NEVER;
    }
    return seeds;
  })
  .optional();

const InfoStep = z.strictObject({ corpus: z.string(), plot: z.string().nullable().optional() });
const TrainStepSpec = z.strictObject({
  /** corpus or audio, relative to workdir when it names a step output, else to the current folder */
  data: z.union([z.string(), z.array(z.string())]),
  run: z.string(),
  model: z.string().optional(),
  config: z.string().optional(),
  steps: z.number().int().positive().optional(),
  /** budget in training samples (scored positions), the same for every model of a comparison */
  samples: z.number().int().positive().optional(),
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
  seeds: Seeds,
});
const EvalStep = z.strictObject({
  run: z.string(),
  data: z.string().optional(),
  split: z.enum(['train', 'valid', 'test']).optional(),
  memory: z.number().int().nonnegative().optional(),
  compressedMemory: z.number().int().nonnegative().optional(),
  limitFiles: z.number().int().positive().optional(),
  engine: z.enum(['onnxruntime', 'tfjs']).optional(),
  seeds: Seeds,
});
const ReportStep = z.strictObject({
  runs: z.array(z.string()).min(1),
  out: z.string(),
  title: z.string().optional(),
  intro: z.string().optional(),
  seeds: Seeds,
});
const GenerateStep = z.strictObject({
  run: z.string(),
  seconds: z.number().positive().optional(),
  /** an audio file to continue, or `corpus:<split>` for the first file of that split of `corpus` */
  prompt: z.string().optional(),
  corpus: z.string().optional(),
  promptSeconds: z.number().positive().optional(),
  seed: z.number().int().nonnegative().optional(),
  temperature: z.number().nonnegative().optional(),
  topK: z.number().int().min(1).max(NUM_CODES).optional(),
  topP: z.number().gt(0).max(1).optional(),
  out: z.string().optional(),
  seeds: Seeds,
});
const AttentionStep = z.strictObject({
  run: z.string(),
  corpus: z.string(),
  split: z.enum(['train', 'valid', 'test']).optional(),
  segments: z.number().int().positive().optional(),
  seeds: Seeds,
});
const STEP_SCHEMAS = {
  prepare: PrepareStep,
  info: InfoStep,
  train: TrainStepSpec,
  eval: EvalStep,
  generate: GenerateStep,
  attention: AttentionStep,
  report: ReportStep,
} as const;
const Step = z.union([
  z.strictObject({ prepare: PrepareStep }),
  z.strictObject({ info: InfoStep }),
  z.strictObject({ train: TrainStepSpec }),
  z.strictObject({ eval: EvalStep }),
  z.strictObject({ generate: GenerateStep }),
  z.strictObject({ attention: AttentionStep }),
  z.strictObject({ report: ReportStep }),
]);

/** Why a step failed the union: its own kind's errors when it names one kind, else the list of kinds. */
function stepProblems(raw: unknown, where: string): string[] {
  const keys = raw && typeof raw === 'object' ? Object.keys(raw) : [];
  const kind = keys.length === 1 ? (keys[0] as keyof typeof STEP_SCHEMAS) : undefined;
  if (!kind || !Object.hasOwn(STEP_SCHEMAS, kind)) {
    return [`${where}: each step must be one of ${STEP_KINDS.join(', ')} with its known fields`];
  }
  const r = STEP_SCHEMAS[kind].safeParse((raw as Record<string, unknown>)[kind]);
  if (r.success) return [`${where}: each step must be one of ${STEP_KINDS.join(', ')} with its known fields`];
  return r.error.issues.map((i) => `${[where, kind, ...i.path].join('.')}: ${i.message}`);
}
export const PipelineFile = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  /** outputs (corpus, runs, plots) are written relative to this folder */
  workdir: z.string(),
  /** `${name}` in any string of the file is replaced by vars[name]; `--data` / `--set` override */
  vars: z.record(z.string(), z.string()).optional(),
  steps: z.array(Step).min(1),
});
export type PipelineFile = z.infer<typeof PipelineFile>;

/** The run folders a step with `seeds` stands for: `<run>-seed<s>` for each seed, else the run itself. */
export function seededRuns(
  run: string,
  seeds: readonly number[] | undefined,
): { run: string; seed: number | undefined }[] {
  return seeds ? seeds.map((seed) => ({ run: `${run}-seed${seed}`, seed })) : [{ run, seed: undefined }];
}

export const STEP_KINDS = ['prepare', 'info', 'train', 'eval', 'generate', 'attention', 'report'];

/** Replaces `${name}` in every string below `doc` (vars itself excluded); an unknown name is an error. */
function substitute(doc: unknown, vars: Record<string, string>, file: string): unknown {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      // A value that is one variable holding a number stays a number (budgets, seconds).
      const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
      if (whole && whole[1] in vars && /^-?\d+(\.\d+)?$/.test(vars[whole[1]])) return Number(vars[whole[1]]);
      return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
        if (!(name in vars))
          throw new UsageError(
            `${file}: \${${name}} is used but not defined (add it under vars: or pass --set ${name}=...)`,
          );
        return vars[name];
      });
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'vars' ? x : walk(x)]));
    return v;
  };
  return walk(doc);
}

export function loadPipeline(file: string, overrides: Record<string, string> = {}): PipelineFile {
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
  const declared = (doc as { vars?: unknown } | null)?.vars;
  const vars = {
    ...(declared && typeof declared === 'object' ? (declared as Record<string, string>) : {}),
    ...overrides,
  };
  const substituted = substitute(doc, vars, file);
  const parsed = PipelineFile.safeParse(substituted);
  if (!parsed.success) {
    const msgs = parsed.error.issues.flatMap((i) => {
      const where = i.path.join('.') || '(top level)';
      if (i.code !== 'invalid_union') return [`${where}: ${i.message}`];
      const raw = i.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k], substituted);
      return stepProblems(raw, where);
    });
    throw new UsageError(`${file}: ${msgs.join('; ')}`);
  }
  return parsed.data;
}
