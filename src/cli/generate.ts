import fs from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { type EngineName, openGenerator } from '../infer/engines.js';
import {
  defaultBlockSize,
  generateCodes,
  type GenerateResult,
  generationSizeProblem,
  MAX_GENERATE_SECONDS,
} from '../infer/generate.js';
import { DEVICE_HELP, type OrtDevice } from '../infer/ort-executor.js';
import { validateSamplingOptions } from '../engine/sampling.js';
import { describeModel } from '../models/registry.js';
import { checkEngineFlags } from './eval.js';
import { loadRun } from '../models/model-files.js';
import { MODEL_RATE } from '../data/corpus-files.js';
import { intArg, UsageError } from './options.js';
import { Progress } from './progress.js';
import { NUM_CODES } from '../util/codes.js';
import {
  cutPrompt,
  PROMPT_START_HELP,
  type PromptCut,
  promptAudio,
  promptFromFile,
  type PromptStart,
  promptStartArg,
  sidePaths,
  type WrittenAudio,
  writeAudio,
} from './generate-prompt.js';

export interface GenerateFlags {
  run: string;
  prompt?: string;
  /** library callers (pipelines): prompt codes already at 16 kHz mu-law; `prompt` then only names them */
  promptCodes?: Uint8Array;
  promptSeconds?: number;
  /** seconds into the prompt's source where the prompt starts, or 'auto' (default): where speech begins */
  promptStart?: PromptStart;
  continuationOnly?: boolean;
  /** write `<stem>.spectrogram.png` beside each WAV */
  spectrogram?: boolean;
  seconds: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  count: number;
  out?: string;
  engine: string;
  threads?: number;
  device: string;
  json?: boolean;
  /** samples per onnxruntime call, sampled in the graph; default: defaultBlockSize */
  block?: number;
}

export interface GenerateSummary extends Omit<GenerateResult, 'codes'> {
  files: string[];
  engine: string;
  batch: number;
  /** samples per graph call (1: one call and one host sampling per sample) */
  block: number;
  /** seconds into the prompt's source where the prompt starts; null without a prompt */
  promptStart: number | null;
  /** `<stem>-prompt.wav` (the prompt alone) and `<stem>-real.wav` (what followed it in the source), or null */
  promptFile: string | null;
  realFile: string | null;
  /** spectrogram PNGs written (--spectrogram), one per WAV */
  spectrograms: string[];
  /** the files hold only the generated part (--continuation-only) */
  continuationOnly: boolean;
  /** how the codes were drawn, so a report can say */
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
}

/** Rows of one generation batch (each row is one continuation). */
const MAX_COUNT = 1024;

/** Defaults shared by `ctspeech generate` and the pipeline's generate step. */
export const GENERATE_DEFAULTS = {
  seconds: 2,
  temperature: 1,
  seed: 0,
  engine: 'onnxruntime',
  device: 'auto',
} as const;

/** Seconds of audio (a continuation or a prompt's start): more than 0, at most an hour. */
function secondsArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > MAX_GENERATE_SECONDS)
    throw new InvalidArgumentError(`expected seconds > 0 and at most ${MAX_GENERATE_SECONDS} (one hour).`);
  return n;
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .summary('continue a prompt (or silence) with a trained model and write WAV files')
    .description(
      'Sample audio one mu-law code at a time from a trained model. With --prompt, the prompt primes ' +
        "the model's state (whole segments at once, then sample by sample) and the output holds the " +
        'prompt followed by the continuation; without one, generation starts from silence. ' +
        'The prompt is --prompt-seconds of its file from --prompt-start, which by default skips the ' +
        'silence many recordings open with, so the model hears speech; beside the output go ' +
        '<stem>-prompt.wav (the prompt alone) and <stem>-real.wav (the audio that really followed it, ' +
        'as long as the continuation) to compare with. ' +
        '--count N generates N continuations as one batch (one model call per sample for all N). ' +
        'Runs on onnxruntime by default (graphs exported into <run>/onnx on first use).\n\n' +
        'Sampling: --temperature scales the logits (0 = greedy), then --top-k keeps the k most likely ' +
        'codes and --top-p the smallest set holding probability p. The same --seed gives the same audio.',
    )
    .requiredOption('--run <dir>', 'a run directory holding config.json and weights.safetensors')
    .option('--prompt <audio>', 'audio to continue (any format ffmpeg reads; resampled to 16 kHz mono)')
    .option(
      '--prompt-seconds <s>',
      `use s seconds of the prompt file from --prompt-start (at most ${MAX_GENERATE_SECONDS}; default: to its end)`,
      secondsArg,
    )
    .option('--prompt-start <s|auto>', PROMPT_START_HELP, promptStartArg)
    .option('--continuation-only', 'write only the generated part, not the prompt')
    .option(
      '--spectrogram',
      'also draw each WAV written (continuations, prompt, real) as <stem>.spectrogram.png: 0-8 kHz, ' +
        '25 ms windows every 10 ms, 80 dB range (see ctspeech spectrogram --help)',
    )
    .option(
      '--seconds <s>',
      `seconds of audio to generate per continuation (at most ${MAX_GENERATE_SECONDS}: one hour)`,
      secondsArg,
      GENERATE_DEFAULTS.seconds,
    )
    .option(
      '--temperature <t>',
      'sampling temperature; 0 picks the most likely code',
      Number,
      GENERATE_DEFAULTS.temperature,
    )
    .option('--top-k <k>', `sample among the k most likely codes (1..${NUM_CODES})`, Number)
    .option('--top-p <p>', 'nucleus sampling: the smallest set of codes holding probability p (0 < p <= 1)', Number)
    .option('--seed <n>', 'random seed', intArg(0), GENERATE_DEFAULTS.seed)
    .option('--count <n>', 'continuations generated together as one batch', intArg(1, MAX_COUNT), 1)
    .option(
      '--out <file.wav>',
      'output WAV (with --count > 1: file-1.wav, file-2.wav, ...); default <run>/generated/seed<seed>.wav',
    )
    .option('--engine <name>', 'onnxruntime or tfjs', GENERATE_DEFAULTS.engine)
    .option('--threads <n>', 'onnxruntime: intra-op threads (default: all cores)', intArg(1, 1024))
    .option('--device <name>', DEVICE_HELP, GENERATE_DEFAULTS.device)
    .option(
      '--block <k>',
      'samples per graph call, drawn inside the graph with the same codes as one per call. WaveNet ' +
        'default at --count 1: 32 for models under 0.25M weights, else 16; 1 at --count > 1. ' +
        "Transformers default to 1 (their blocks measure slower); a transformer's block is capped at its " +
        'segment length and runs only where it ends within a segment',
      intArg(1, 256),
    )
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech generate --run runs/ct --seconds 3\n' +
        '  ctspeech generate --run runs/ct --prompt samples/speech/test/vm-newuser.flac ' +
        '--prompt-seconds 1 --seconds 2 --count 4\n' +
        '      prompt: 1 s from where speech begins; writes runs/ct/generated/seed0-1.wav ... seed0-4.wav,\n' +
        '      seed0-prompt.wav and seed0-real.wav\n' +
        '  ctspeech generate --run runs/ct --prompt samples/speech/test/demo-moreinfo.wav ' +
        '--prompt-start 2.5 --prompt-seconds 1 --spectrogram --out out/demo.wav\n' +
        '      prompt: 2.5-3.5 s of the file; out/demo.wav, out/demo-prompt.wav, out/demo-real.wav, each with\n' +
        '      its .spectrogram.png (the dashed line marks where the prompt ends)\n' +
        '  ctspeech generate --run runs/wavenet --temperature 0.9 --top-p 0.95 --seed 7 --out out/wn.wav',
    )
    .action(async (o: GenerateFlags) => {
      await runGenerate(o);
    });
}

/** The --out path (un-numbered: the prompt/real files are named from it) and the WAV of each row. */
function outputPaths(o: GenerateFlags): { out: string; files: string[] } {
  const out = o.out ?? path.join(o.run, 'generated', `seed${o.seed}.wav`);
  if (!/\.wav$/i.test(out)) throw new UsageError(`--out must name a .wav file, got ${out}`);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory())
    throw new UsageError(`--out ${out} is a folder; name a .wav file`);
  if (o.count === 1) return { out, files: [out] };
  const stem = out.replace(/\.wav$/i, '');
  return { out, files: Array.from({ length: o.count }, (_, k) => `${stem}-${k + 1}.wav`) };
}

export async function runGenerate(o: GenerateFlags): Promise<GenerateSummary> {
  checkEngineFlags(o);
  if (!Number.isFinite(o.seconds) || o.seconds <= 0 || o.seconds > MAX_GENERATE_SECONDS)
    throw new UsageError(
      `--seconds must be a number > 0 and at most ${MAX_GENERATE_SECONDS} (one hour), got ${o.seconds}`,
    );
  if (o.promptSeconds !== undefined && !(o.promptSeconds > 0 && o.promptSeconds <= MAX_GENERATE_SECONDS))
    throw new UsageError(
      `--prompt-seconds must be a number > 0 and at most ${MAX_GENERATE_SECONDS} (one hour), got ${o.promptSeconds}`,
    );
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > MAX_COUNT)
    throw new UsageError(`--count must be an integer from 1 to ${MAX_COUNT}, got ${o.count}`);
  const continuation = Math.round(o.seconds * MODEL_RATE);
  // The prompt's length is known for sure only once decoded; --prompt-seconds bounds it now.
  const sizeNow = generationSizeProblem(o.count, Math.round((o.promptSeconds ?? 0) * MODEL_RATE), continuation);
  if (sizeNow) throw new UsageError(sizeNow);
  try {
    validateSamplingOptions({ temperature: o.temperature, topK: o.topK, topP: o.topP });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (o.promptStart !== undefined && o.prompt === undefined && !o.promptCodes)
    throw new UsageError('--prompt-start needs --prompt <audio>: it says where in that file the prompt starts');
  const { out, files } = outputPaths(o);
  const { cfg, params } = loadRun(o.run);
  const source = o.prompt ?? 'the prompt codes';
  const window = { start: o.promptStart, seconds: o.promptSeconds, continuation };
  let cut: PromptCut | undefined;
  if (o.promptCodes) cut = cutPrompt({ codes: o.promptCodes }, source, window);
  else if (o.prompt !== undefined) cut = await promptFromFile(o.prompt, window);
  const prompt = cut?.prompt;
  const sizeProblem = generationSizeProblem(o.count, prompt?.length ?? 0, continuation);
  if (sizeProblem) throw new UsageError(sizeProblem);
  const log = o.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  log(describeModel(cfg));
  const { gen, info } = await openGenerator(o.run, cfg, params, o.count, {
    engine: o.engine as EngineName,
    threads: o.threads,
    device: o.device as OrtDevice,
    blockSize: o.block ?? defaultBlockSize(cfg, o.count),
    sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP },
    onExport: (f, b) => log(`exported ${f} (${(b / 1e6).toFixed(1)} MB)`),
  });
  log(`engine: ${info.summary}`);
  if (cut)
    log(
      `prompt: ${source}, ${(cut.prompt.length / MODEL_RATE).toFixed(2)} s ` +
        `from ${(cut.start / MODEL_RATE).toFixed(2)} s`,
    );
  const progress = new Progress('generate');
  let r: GenerateResult;
  try {
    r = await generateCodes(gen, {
      seconds: o.seconds,
      sampleRate: MODEL_RATE,
      prompt,
      seed: o.seed,
      sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP },
      onProgress: (d, t, sps) =>
        progress.update(
          d,
          t,
          `${Math.round(sps * o.count).toLocaleString('en-US')} samples/s, ` +
            `${((sps * o.count) / MODEL_RATE).toFixed(3)}x real time`,
        ),
    });
  } finally {
    progress.done();
    await gen.dispose();
  }
  const secs = (n: number) => (n / MODEL_RATE).toFixed(2);
  const what = !cut
    ? `${secs(r.continuationSamples)} s generated from silence`
    : o.continuationOnly
      ? `${secs(r.continuationSamples)} s generated after the prompt`
      : `${secs(r.promptLength)} s prompt (from ${secs(cut.start)} s of ${path.basename(source)}) + ` +
        `${secs(r.continuationSamples)} s generated`;
  const marks = cut && !o.continuationOnly ? [{ seconds: r.promptLength / MODEL_RATE, label: 'prompt ends' }] : [];
  const written: WrittenAudio[] = r.codes.map((row, k) => ({
    file: files[k],
    codes: o.continuationOnly ? row.subarray(r.promptLength) : row,
    title: `${path.basename(files[k])}: ${what}`,
    marks,
  }));
  const side = cut ? promptAudio(cut, out, source) : [];
  const spectrograms = writeAudio([...written, ...side], o.spectrogram ?? false);
  const { codes: _codes, ...figures } = r;
  const summary: GenerateSummary = {
    ...figures,
    files,
    engine: info.summary,
    batch: o.count,
    block: gen.block?.size ?? 1,
    promptStart: cut ? cut.start / MODEL_RATE : null,
    promptFile: cut ? sidePaths(out).prompt : null,
    realFile: cut?.real ? sidePaths(out).real : null,
    spectrograms,
    continuationOnly: !!o.continuationOnly,
    temperature: o.temperature,
    ...(o.topK !== undefined ? { topK: o.topK } : {}),
    ...(o.topP !== undefined ? { topP: o.topP } : {}),
    seed: o.seed,
  };
  if (o.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    for (const f of [...files, ...side.map((w) => w.file), ...spectrograms]) console.log(`wrote ${f}`);
    console.log(
      `${r.continuationSamples} samples x ${o.count} in ${(r.seconds * r.realTimeFactor).toFixed(2)} s: ` +
        `${Math.round(r.samplesPerSecond * o.count).toLocaleString('en-US')} samples/s in all, ` +
        `real-time factor ${r.realTimeFactor.toFixed(2)} per continuation ` +
        `(${r.realTimeFactor <= 1 ? 'faster' : 'slower'} than real time; priming took ${r.primeSeconds.toFixed(2)} s)`,
    );
  }
  return summary;
}
