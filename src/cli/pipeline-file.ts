/** The pipeline file: its schema, variables and loading, with errors that name the file and field. */
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { UsageError } from './options.js';
import { NUM_CODES } from '../util/codes.js';
import { MAX_GENERATE_SECONDS } from '../infer/generate.js';

export const PrepareStep = z.strictObject({
  inputs: z.array(z.string()).min(1),
  out: z.string(),
  sampleRate: z.number().int().positive().optional(),
  validFraction: z.number().min(0).lt(1).optional(),
  testFraction: z.number().min(0).lt(1).optional(),
  trimDb: z.number().lt(0).nullable().optional(),
  workers: z.number().int().positive().optional(),
  /** allow dropping more than half of an existing corpus (files gone from the inputs) */
  prune: z.boolean().optional(),
});
/**
 * `seeds: "0,1,2"` on a train, eval, generate, attention or report step runs it once per seed, on
 * the run folder `<run>-seed<s>` (a train step also trains with that seed); the report then gives
 * each model's mean and spread over its seeds.
 */
const Seeds = z
  .union([z.number().int().nonnegative(), z.string()])
  .describe('a seed, or comma-separated seeds such as "0,1,2"')
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
  /** start the run over (as `ctspeech train --restart`) instead of resuming its checkpoint */
  restart: z.boolean().optional(),
  /** what runs the training step (as `ctspeech train --engine`) */
  engine: z.enum(['auto', 'tfjs', 'onnxruntime']).optional(),
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
  seconds: z.number().positive().max(MAX_GENERATE_SECONDS).optional(),
  /** an audio file to continue, or `corpus:<split>` for the first file of that split of `corpus` */
  prompt: z.string().optional(),
  corpus: z.string().optional(),
  promptSeconds: z.number().positive().max(MAX_GENERATE_SECONDS).optional(),
  /** seconds into the prompt's file where the prompt starts, or auto (default): where speech begins */
  promptStart: z
    .union([z.number().nonnegative(), z.literal('auto')])
    .describe('seconds >= 0 into the prompt file, or "auto"')
    .optional(),
  /** a spectrogram PNG beside each WAV written (default true in pipelines) */
  spectrogram: z.boolean().optional(),
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

export const PipelineFile = z
  .strictObject({
    name: z.string(),
    description: z.string().optional(),
    /** outputs (corpus, runs, plots) are written relative to this folder */
    workdir: z.string(),
    /** `${name}` in any string of the file is replaced by vars[name]; `--data` / `--set` override */
    vars: z.record(z.string(), z.string()).optional(),
    steps: z
      .array(Step)
      .min(1)
      .describe(`a list of steps, each one of ${Object.keys(STEP_SCHEMAS).join(', ')}`),
  })
  .describe('a mapping with name, workdir and steps');
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

/*
 * Problems are worded from the schema itself (its JSON Schema form): which step (number and kind),
 * which field, what it takes and what the file has, so a missing `run:` or `steps: "ten"` reads
 * as exactly that, whatever the field.
 */
interface JsonSchema {
  type?: string;
  description?: string;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  items?: JsonSchema;
  minItems?: number;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

let fileSchema: JsonSchema | undefined;
function schemaOfFile(): JsonSchema {
  fileSchema ??= z.toJSONSchema(PipelineFile, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return fileSchema;
}

function schemaAt(root: JsonSchema, at: readonly PropertyKey[]): JsonSchema | undefined {
  const child = (js: JsonSchema, k: PropertyKey): JsonSchema | undefined => {
    // A union (a step) continues in the alternative that has the key.
    if (js.anyOf) return js.anyOf.map((alt) => child(alt, k)).find((c) => c !== undefined);
    if (typeof k === 'number') return js.items;
    const named = js.properties && Object.hasOwn(js.properties, k) ? js.properties[String(k)] : undefined;
    return named ?? (typeof js.additionalProperties === 'object' ? js.additionalProperties : undefined);
  };
  let js: JsonSchema | undefined = root;
  for (const k of at) js = js && child(js, k);
  return js;
}

function expectedText(js: JsonSchema): string {
  if (js.description) return js.description;
  if (js.anyOf) return js.anyOf.map(expectedText).join(' or ');
  if (js.enum) return `one of ${js.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  switch (js.type) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'nothing (null)';
    case 'integer':
    case 'number': {
      const bounds: string[] = [];
      const limited = (x: number | undefined): x is number => x !== undefined && Math.abs(x) < Number.MAX_SAFE_INTEGER;
      if (limited(js.exclusiveMinimum)) bounds.push(`> ${js.exclusiveMinimum}`);
      if (limited(js.minimum)) bounds.push(`>= ${js.minimum}`);
      if (limited(js.exclusiveMaximum)) bounds.push(`< ${js.exclusiveMaximum}`);
      if (limited(js.maximum)) bounds.push(`<= ${js.maximum}`);
      return `${js.type === 'integer' ? 'an integer' : 'a number'}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
    }
    case 'array': {
      const list = js.minItems ? 'a non-empty list' : 'a list';
      return js.items?.type === 'string' ? `${list} of strings` : list;
    }
    case 'object':
      return 'a mapping of fields';
    default:
      return 'a value';
  }
}

function shown(v: unknown): string {
  if (v === null) return 'nothing (an empty value)';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

function valueAt(doc: unknown, at: readonly PropertyKey[]): unknown {
  let v = doc;
  for (const k of at) v = v !== null && typeof v === 'object' && Object.hasOwn(v, k) ? (v as never)[k] : undefined;
  return v;
}

function isStepPath(at: readonly PropertyKey[]): boolean {
  return at.length === 2 && at[0] === 'steps' && typeof at[1] === 'number';
}

/** "step 3 (train) at steps.2.train.run": the step as a person counts it, and the path in the file. */
function located(at: readonly PropertyKey[], kind = at[0] === 'steps' ? at[2] : undefined): string {
  const dotted = at.map(String).join('.') || '(top level)';
  if (at[0] !== 'steps' || typeof at[1] !== 'number') return dotted;
  return `step ${at[1] + 1}${kind !== undefined ? ` (${String(kind)})` : ''} at ${dotted}`;
}

function issueText(issue: z.core.$ZodIssue, at: readonly PropertyKey[], doc: unknown): string {
  const where = located(at);
  const schema = schemaAt(schemaOfFile(), at);
  if (issue.code === 'unrecognized_keys') {
    const known = Object.keys(schema?.properties ?? {});
    return (
      `${where}: unknown field(s) ${issue.keys.join(', ')}` + `${known.length ? ` (known: ${known.join(', ')})` : ''}`
    );
  }
  // Custom checks (seeds) word their own problem, value included.
  if (issue.code === 'custom' || !schema) return `${where}: ${issue.message}`;
  const value = valueAt(doc, at);
  if (value === undefined) return `${where}: missing; expected ${expectedText(schema)}`;
  return `${where}: expected ${expectedText(schema)}, got ${shown(value)}`;
}

/** Why a step matched no kind: not a mapping, no kind or several, fields beside the kind, or its own fields. */
function stepProblems(at: readonly PropertyKey[], doc: unknown): string[] {
  const raw = valueAt(doc, at);
  const kinds = `each step must be one of ${STEP_KINDS.join(', ')} with its known fields`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    return [`${located(at)}: ${kinds} (a mapping such as "train: {...}"), got ${shown(raw)}`];
  const keys = Object.keys(raw);
  const named = keys.filter((k) => Object.hasOwn(STEP_SCHEMAS, k)) as (keyof typeof STEP_SCHEMAS)[];
  if (named.length === 0)
    return [
      `${located(at)}: ${kinds}; ` +
        (keys.length ? `${keys.map((k) => JSON.stringify(k)).join(', ')} is not a step kind` : 'this one is empty'),
    ];
  if (named.length > 1) return [`${located(at)}: ${kinds}, one per step; this one names ${named.join(' and ')}`];
  const kind = named[0];
  const extra = keys.filter((k) => k !== kind);
  if (extra.length) {
    const fields = Object.keys(STEP_SCHEMAS[kind].shape);
    const own = extra.every((k) => fields.includes(k));
    return [
      `${located(at, kind)}: ${extra.join(', ')} ${extra.length > 1 ? 'are' : 'is'} beside "${kind}:" ` +
        (own
          ? `but ${extra.length > 1 ? 'belong' : 'belongs'} under it: indent ${extra.length > 1 ? 'them' : 'it'}`
          : `where a step has nothing but its kind (fields go under "${kind}:", indented)`),
    ];
  }
  const r = STEP_SCHEMAS[kind].safeParse((raw as Record<string, unknown>)[kind]);
  if (r.success) return [`${located(at, kind)}: ${kinds}`];
  return r.error.issues.map((i) => issueText(i, [...at, kind, ...i.path], doc));
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
  const raw = (doc as { vars?: unknown } | null)?.vars;
  const declared = raw && typeof raw === 'object' ? (raw as Record<string, string>) : {};
  // A misspelt --set would otherwise run the whole experiment with the default it meant to change.
  const unknown = Object.keys(overrides).filter((k) => !Object.hasOwn(declared, k));
  if (unknown.length) {
    const names = Object.keys(declared);
    const flags = unknown.map((k) => (k === 'data' ? '--data' : `--set ${k}`)).join(', ');
    const has = names.length ? `its variables: ${names.join(', ')}` : 'it declares no vars';
    throw new UsageError(`${flags}: ${file} has no such variable (${has})`);
  }
  const vars = { ...declared, ...overrides };
  const substituted = substitute(doc, vars, file);
  const parsed = PipelineFile.safeParse(substituted);
  if (!parsed.success) {
    const msgs = parsed.error.issues.flatMap((i) =>
      i.code === 'invalid_union' && isStepPath(i.path)
        ? stepProblems(i.path, substituted)
        : [issueText(i, i.path, substituted)],
    );
    throw new UsageError(
      `${file}: ${msgs.length > 1 ? `${msgs.length} problems:\n  - ${msgs.join('\n  - ')}` : msgs[0]}`,
    );
  }
  return parsed.data;
}
