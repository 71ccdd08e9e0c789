/** What a run folder says about itself, read once for every report format. */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { AttentionProfile } from '../infer/attention.js';
import { type MetricLine, readMetrics } from '../train/curves.js';

export interface EvalFigures {
  nats: number;
  bits: number;
  samples: number;
  unigramBits: number;
  samplesPerSecond: number;
}

export interface RunSummary {
  name: string;
  /** the model this run is one seed of (the run's own name when the report has no seeds) */
  group: string;
  seed: number | null;
  run: string;
  model: string;
  params: string;
  steps: number;
  /** the steps training was planned for (train.json); more than `steps` when it stopped early */
  plannedSteps: number | null;
  /** training samples seen (scored positions) */
  samplesTrained: number;
  /** training wall time over all sessions, when the run recorded it */
  wallSeconds: number | null;
  /** what trained it: `onnxruntime`, or `tfjs-<backend>` for the tfjs engine (or runs from before engines) */
  trainedOn: string | null;
  trainSamplesPerSecond: number | null;
  validNats: number | null;
  /** validation NLL (bits) against training samples: the Figure 4 analogue */
  validCurve: [number, number][];
  /** metrics.jsonl, read once for the figures above and the training-curves chart */
  metrics: MetricLine[];
  test: EvalFigures | null;
  valid: EvalFigures | null;
  generation: Generation | null;
  /** config.json as written */
  config: Record<string, unknown>;
  /** train.json as written (the training settings and, for newer runs, the machine), or null */
  settings: Record<string, unknown> | null;
  attention: {
    regions: { name: string; slots: number; mass: number; perSlot: number }[];
    counted: number;
    /** attention.json: weight per key slot, per layer and mean */
    profile: AttentionProfile;
  } | null;
  /** the run's folder under the report's media/ (unique in one report; set by writeReports) */
  media?: string;
}

export interface Generation {
  realTimeFactor: number;
  samplesPerSecond: number;
  /** the first generated WAV: the prompt then the continuation, or only the continuation */
  file: string;
  engine: string;
  /** prompt samples at the start of `file` (0 without a prompt, or for continuation-only files) */
  promptLength: number;
  continuationSamples: number;
  /** whether `file` was written without its prompt (null: generate.json predates the field) */
  continuationOnly: boolean | null;
  /** what the prompt was taken from, and from which second */
  prompt: string | null;
  promptStart: number | null;
  /** the prompt alone, and the real audio that followed it in its source, when generation wrote them */
  promptFile: string | null;
  realFile: string | null;
  /** how the codes were drawn, when generate.json records it */
  sampling: { temperature?: number; topK?: number; topP?: number; seed?: number };
}

export const LN2 = Math.log(2);

const num = z.number().refine(Number.isFinite, 'a finite number');
const count = z.number().int().nonnegative();
const EvalJson = z.object({ nats: num, bits: num, totalSamples: count, unigramBits: num, samplesPerSecond: num });
const GenerateJson = z.object({
  realTimeFactor: num,
  samplesPerSecond: num,
  files: z.array(z.string()).min(1),
  engine: z.string(),
  promptLength: count.optional(),
  continuationSamples: count.optional(),
  continuationOnly: z.boolean().optional(),
  prompt: z.string().nullable().optional(),
  promptStart: num.nullable().optional(),
  promptFile: z.string().nullable().optional(),
  realFile: z.string().nullable().optional(),
  temperature: num.optional(),
  topK: count.optional(),
  topP: num.optional(),
  seed: z.number().int().optional(),
});
const Region = z.object({
  name: z.enum(['compressed memory', 'memory', 'segment']),
  slots: count,
  mass: num,
  perSlot: num,
});
const AttentionJson = z.object({
  layers: count,
  slots: z.object({ compressed: count, memory: count, segment: count }),
  counted: count,
  perLayer: z.array(z.array(num)),
  mean: z.array(num),
  regions: z.array(Region),
  regionsPerLayer: z.array(z.array(Region)),
});
const TrainJson = z.record(z.string(), z.unknown());

/**
 * A run's JSON file checked against what the report reads from it; a file that is absent is null,
 * one that is unreadable or malformed is reported through `warn` and also null (the report shows
 * what else the run has rather than failing, and never prints an unchecked value).
 */
function readChecked<T>(file: string, schema: z.ZodType<T>, warn: (s: string) => void): T | null {
  if (!fs.existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    warn(`report: ${file} is not JSON (${(e as Error).message}); left out`);
    return null;
  }
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  warn(`report: ${file} is malformed (${first.path.join('.') || 'top level'}: ${first.message}); left out`);
  return null;
}

function evalFigures(file: string, warn: (s: string) => void): EvalFigures | null {
  const e = readChecked(file, EvalJson, warn);
  return e
    ? {
        nats: e.nats,
        bits: e.bits,
        samples: e.totalSamples,
        unigramBits: e.unigramBits,
        samplesPerSecond: e.samplesPerSecond,
      }
    : null;
}

// train.json's `backend` is tfjs's backend, loaded in every process; it trained only when the engine was tfjs.
function trainedOn(train: Record<string, unknown> | null): string | null {
  if (train?.engine === 'onnxruntime') return 'onnxruntime';
  return typeof train?.backend === 'string' ? `tfjs-${train.backend}` : null;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** What a run directory says about itself: config, metrics, saved evaluations, generation and attention analysis. */
export function summarizeRun(
  name: string,
  run: string,
  describe: (cfg: unknown) => { model: string; params: string },
  of: { group: string; seed: number | null } = { group: name, seed: null },
  warn: (s: string) => void = console.warn,
): RunSummary {
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  const d = describe(cfg);
  const metrics = readMetrics(path.join(run, 'metrics.jsonl'));
  const steps = metrics.filter((m) => finite(m.nll) && finite(m.samples));
  const valid = metrics.filter((m) => finite(m.valid_nll));
  // Older runs' validation lines carry no sample count: take it from the step line of the same step.
  const samplesAt = new Map<number, number>(steps.map((m) => [m.step, m.samples!]));
  const last = steps.length ? steps[steps.length - 1] : null;
  const gen = readChecked(path.join(run, 'generate.json'), GenerateJson, warn);
  const att = readChecked(path.join(run, 'attention.json'), AttentionJson, warn);
  const train = readChecked(path.join(run, 'train.json'), TrainJson, warn);
  return {
    name,
    group: of.group,
    seed: of.seed,
    run,
    model: d.model,
    params: d.params,
    steps: last ? last.step : 0,
    plannedSteps: finite(train?.steps) ? train.steps : null,
    samplesTrained: last ? last.samples! : 0,
    wallSeconds: finite(last?.elapsed_s) ? last.elapsed_s : null,
    trainedOn: trainedOn(train),
    trainSamplesPerSecond: finite(last?.samples_per_s) ? last.samples_per_s : null,
    validNats: valid.length ? valid[valid.length - 1].valid_nll! : null,
    validCurve: valid.flatMap((m) => {
      const s = m.samples ?? samplesAt.get(m.step);
      return finite(s) ? [[s, m.valid_nll! / LN2] as [number, number]] : [];
    }),
    metrics,
    test: evalFigures(path.join(run, 'eval-test.json'), warn),
    valid: evalFigures(path.join(run, 'eval-valid.json'), warn),
    generation: gen ? generation(run, gen) : null,
    config: cfg,
    settings: train,
    attention: att ? { regions: att.regions, counted: att.counted, profile: att } : null,
  };
}

function generation(run: string, gen: z.infer<typeof GenerateJson>): Generation {
  const file = generatedFile(run, gen.files[0]);
  const optional = (f: string | null | undefined) => {
    const p = f ? generatedFile(run, f) : null;
    return p && fs.existsSync(p) ? p : null;
  };
  return {
    realTimeFactor: gen.realTimeFactor,
    samplesPerSecond: gen.samplesPerSecond,
    file,
    engine: gen.engine,
    promptLength: gen.promptLength ?? 0,
    continuationSamples: gen.continuationSamples ?? 0,
    continuationOnly: gen.continuationOnly ?? null,
    prompt: gen.prompt ?? null,
    promptStart: gen.promptStart ?? null,
    promptFile: optional(gen.promptFile),
    realFile: optional(gen.realFile),
    sampling: { temperature: gen.temperature, topK: gen.topK, topP: gen.topP, seed: gen.seed },
  };
}

/** generate.json names its files relative to the run folder (older ones: to the folder it ran in). */
function generatedFile(run: string, file: string): string {
  if (path.isAbsolute(file)) return file;
  const inRun = path.join(run, file);
  return fs.existsSync(inRun) || !fs.existsSync(file) ? inRun : file;
}
