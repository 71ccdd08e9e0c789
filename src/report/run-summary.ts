/** What a run folder says about itself, read once for every report format. */
import fs from 'node:fs';
import path from 'node:path';

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
    plot: string | null;
  } | null;
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
  /** what the prompt was taken from, and from which second */
  prompt: string | null;
  promptStart: number | null;
  /** the prompt alone, and the real audio that followed it in its source, when generation wrote them */
  promptFile: string | null;
  realFile: string | null;
}

export const LN2 = Math.log(2);

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

function evalFigures(file: string): EvalFigures | null {
  const e = readJson<{
    nats: number;
    bits: number;
    totalSamples: number;
    unigramBits: number;
    samplesPerSecond: number;
  }>(file);
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
function trainedOn(train: { backend?: unknown; engine?: unknown } | null): string | null {
  if (train?.engine === 'onnxruntime') return 'onnxruntime';
  return typeof train?.backend === 'string' ? `tfjs-${train.backend}` : null;
}

/** What a run directory says about itself: config, metrics, saved evaluations, generation and attention analysis. */
export function summarizeRun(
  name: string,
  run: string,
  describe: (cfg: unknown) => { model: string; params: string },
  of: { group: string; seed: number | null } = { group: name, seed: null },
): RunSummary {
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  const metrics = fs.existsSync(path.join(run, 'metrics.jsonl'))
    ? fs
        .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .flatMap((l) => {
          try {
            return [JSON.parse(l)];
          } catch {
            return [];
          }
        })
    : [];
  const steps = metrics.filter((m) => m.nll !== undefined);
  const valid = metrics.filter((m) => m.valid_nll !== undefined);
  // Older runs' validation lines carry no sample count: take it from the step line of the same step.
  const samplesAt = new Map<number, number>(steps.map((m) => [m.step, m.samples]));
  const last = steps.length ? steps[steps.length - 1] : null;
  const gen = readJson<GenerateJson>(path.join(run, 'generate.json'));
  const att = readJson<{ regions: { name: string; slots: number; mass: number; perSlot: number }[]; counted: number }>(
    path.join(run, 'attention.json'),
  );
  const d = describe(cfg);
  const train = readJson<{ backend?: unknown; engine?: unknown; steps?: unknown }>(path.join(run, 'train.json'));
  return {
    name,
    group: of.group,
    seed: of.seed,
    run,
    model: d.model,
    params: d.params,
    steps: last ? last.step : 0,
    plannedSteps: typeof train?.steps === 'number' && Number.isFinite(train.steps) ? train.steps : null,
    samplesTrained: last ? last.samples : 0,
    wallSeconds: last?.elapsed_s ?? null,
    trainedOn: trainedOn(train),
    trainSamplesPerSecond: last ? (last.samples_per_s ?? null) : null,
    validNats: valid.length ? valid[valid.length - 1].valid_nll : null,
    validCurve: valid.flatMap((m) => {
      const s = m.samples ?? samplesAt.get(m.step);
      return s === undefined ? [] : [[s, m.valid_nll / LN2] as [number, number]];
    }),
    test: evalFigures(path.join(run, 'eval-test.json')),
    valid: evalFigures(path.join(run, 'eval-valid.json')),
    generation: gen && gen.files?.length ? generation(run, gen) : null,
    config: cfg,
    settings: train as Record<string, unknown> | null,
    attention: att
      ? {
          regions: att.regions,
          counted: att.counted,
          plot: fs.existsSync(path.join(run, 'attention.png')) ? path.join(run, 'attention.png') : null,
        }
      : null,
  };
}

interface GenerateJson {
  realTimeFactor: number;
  samplesPerSecond: number;
  files: string[];
  engine: string;
  promptLength?: number;
  continuationSamples?: number;
  prompt?: string | null;
  promptStart?: number | null;
  promptFile?: string | null;
  realFile?: string | null;
}

function generation(run: string, gen: GenerateJson): Generation {
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
    prompt: gen.prompt ?? null,
    promptStart: gen.promptStart ?? null,
    promptFile: optional(gen.promptFile),
    realFile: optional(gen.realFile),
  };
}

/** generate.json names its files relative to the run folder (older ones: to the folder it ran in). */
function generatedFile(run: string, file: string): string {
  if (path.isAbsolute(file)) return file;
  const inRun = path.join(run, file);
  return fs.existsSync(inRun) || !fs.existsSync(file) ? inRun : file;
}
