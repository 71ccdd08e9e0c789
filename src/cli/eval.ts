import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { decodeAudio } from '../audio/decode.js';
import { muLawEncode } from '../audio/mulaw.js';
import { manifestPath, SPLITS, type Split } from '../data/manifest.js';
import { scanInputs } from '../data/scan.js';
import { backendSummary, type BackendName, initBackend } from '../engine/backend.js';
import { evaluateCodes, type EvalFile, type EvalResult } from '../infer/evaluate.js';
import { loadRun } from '../models/model-files.js';
import { MODEL_RATE, readCorpus } from '../data/corpus-files.js';
import { describeModel, familyOf } from '../models/registry.js';
import { formatHours, formatTable } from '../report/table.js';
import { checkBackendFlag, intArg, UsageError } from './options.js';
import { Progress } from './progress.js';
import { ENGINES, type EngineName, opener } from '../infer/engines.js';
import { DEVICE_CHOICES, DEVICE_HELP, isOrtDevice, type OrtDevice, resolveDevice } from '../infer/ort-executor.js';

interface EvalFlags {
  run: string;
  data?: string;
  split: string;
  memory?: number;
  compressedMemory?: number;
  batch: number;
  backend: string;
  engine: string;
  threads?: number;
  device: string;
  json?: boolean;
  limitFiles?: number;
}

/** Defaults shared by `ctspeech eval` and the pipeline's eval step. */
export const EVAL_DEFAULTS = {
  split: 'test',
  batch: 8,
  engine: 'onnxruntime',
  backend: 'auto',
  device: 'auto',
} as const;

export function registerEval(program: Command): void {
  program
    .command('eval')
    .summary('NLL per sample (nats and bits) of a trained model on held-out audio')
    .description(
      'Score every sample of held-out files with a trained model: each file from empty memory, every ' +
        'sample after the first predicted from all before it. Prints the NLL per file and over the split ' +
        '(sample-weighted), in nats and bits per sample, beside the unigram entropy of the same codes.\n\n' +
        "Data: by default the run's own corpus (<run>/corpus, split test). --data may name another " +
        'corpus (a folder with manifest.json), or audio files/folders, decoded at 16 kHz.',
    )
    .requiredOption('--run <dir>', 'a run directory holding config.json and weights.safetensors')
    .option('--data <path>', 'a prepared corpus, an audio folder or an audio file (default <run>/corpus)')
    .option('--split <name>', 'corpus split to score: test, valid or train', EVAL_DEFAULTS.split)
    .option('--memory <n>', 'transformer memory length at evaluation (default: as trained)', intArg(0))
    .option('--compressed-memory <n>', 'compressed memory length at evaluation (default: as trained)', intArg(0))
    .option('--batch <n>', 'files scored in parallel rows', intArg(1, 1024), EVAL_DEFAULTS.batch)
    .option(
      '--engine <name>',
      'onnxruntime (graphs exported into <run>/onnx on first use) or tfjs',
      EVAL_DEFAULTS.engine,
    )
    .option('--threads <n>', 'onnxruntime: intra-op threads (default: all cores)', intArg(1, 1024))
    .option('--device <name>', DEVICE_HELP, EVAL_DEFAULTS.device)
    .option('--backend <name>', 'tfjs engine: auto, tensorflow, wasm or cpu', EVAL_DEFAULTS.backend)
    .option('--limit-files <n>', 'score only the first n files', intArg(1))
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech eval --run runs/ct\n' +
        '  ctspeech eval --run runs/ct --memory 1024 --json\n' +
        '  ctspeech eval --run runs/ct --data my-recordings/\n' +
        '  ctspeech eval --run runs/ct --engine tfjs --backend wasm',
    )
    .action(async (o: EvalFlags) => {
      await runEval(o);
    });
}

export async function runEval(o: EvalFlags): Promise<EvalResult> {
  checkEngineFlags(o);
  checkBackendFlag(o.backend);
  if (!(SPLITS as readonly string[]).includes(o.split))
    throw new UsageError(`--split must be one of ${SPLITS.join(', ')}, got ${o.split}`);
  const { cfg, params } = loadRun(o.run);
  // Bad memory overrides fail now, before any audio is decoded.
  familyOf(cfg).evalConfig(cfg, { memory: o.memory, compressedMemory: o.compressedMemory });
  const { files, source, skipped } = await loadData(o);
  const short = files.filter((f) => f.codes.length < 2);
  const usable = files.filter((f) => f.codes.length >= 2).slice(0, o.limitFiles ?? Infinity);
  if (usable.length === 0)
    throw new UsageError(
      `${source}: no audio to score${files.length ? ' (every file is shorter than 2 samples)' : ''}`,
    );

  const log = o.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  if (o.engine === 'tfjs') log(backendSummary(await initBackend(o.backend as BackendName | 'auto')));
  log(`${describeModel(cfg)}`);
  for (const s of skipped) console.error(`skipped ${s.source}: ${s.reason}`);
  for (const f of short) console.error(`skipped ${f.path}: shorter than 2 samples, nothing to score`);
  const progress = new Progress('eval');
  const r = await evaluateCodes(cfg, params, usable, {
    batch: o.batch,
    memory: o.memory,
    compressedMemory: o.compressedMemory,
    onProgress: (d, t) => progress.update(d, t),
    open: opener(o.run, {
      engine: o.engine as EngineName,
      threads: o.threads,
      device: o.device as OrtDevice,
      onExport: (f, b) => log(`exported ${f} (${(b / 1e6).toFixed(1)} MB)`),
    }),
  });
  progress.done();
  if (o.json) {
    console.log(JSON.stringify(r, null, 2));
    return r;
  }
  if (r.memoryOverride) {
    const m = r.memoryOverride;
    console.log(
      `memory at evaluation: ${m.memory} + compressed ${m.compressedMemory} ` +
        `(trained with ${m.trainedMemory} + ${m.trainedCompressedMemory})`,
    );
  }
  console.log(`Scored ${source}: ${r.files.length} file(s), ${formatHours(r.totalSamples / MODEL_RATE / 3600)}`);
  console.log(
    formatTable(
      ['file', 'samples', 'NLL (nats)', 'NLL (bits)'],
      [
        ...r.files.map((f) => [f.path, f.samples, f.nats.toFixed(4), f.bits.toFixed(4)]),
        ['total', r.totalSamples, r.nats.toFixed(4), r.bits.toFixed(4)],
      ],
    ),
  );
  console.log(
    `unigram entropy of the same codes: ${r.unigramNats.toFixed(4)} nats, ` +
      `${r.unigramBits.toFixed(4)} bits per sample (a context-free model's NLL)`,
  );
  console.log(
    `${Math.round(r.samplesPerSecond).toLocaleString('en-US')} samples/s ` +
      `(batch ${r.batch}, segment ${r.segment}, ${r.backend})`,
  );
  if (r.calls.length > 1)
    console.log(
      'rows moved to smaller batches as files ran out: ' +
        r.calls.map((c) => `${c.calls} call${c.calls === 1 ? '' : 's'} at batch ${c.batch}`).join(', '),
    );
  return r;
}

/** --engine / --device checked before any work, naming the flag. */
export function checkEngineFlags(o: { engine: string; device: string }): void {
  if (!(ENGINES as readonly string[]).includes(o.engine))
    throw new UsageError(`--engine must be ${ENGINES.join(' or ')}, got ${o.engine}`);
  if (!isOrtDevice(o.device)) throw new UsageError(`--device must be ${DEVICE_CHOICES}, got ${o.device}`);
  if (o.engine === 'onnxruntime') resolveDevice(o.device);
}

async function loadData(
  o: EvalFlags,
): Promise<{ files: EvalFile[]; source: string; skipped: { source: string; reason: string }[] }> {
  if (o.data === undefined) {
    // The corpus the run trained on: <run>/corpus when training prepared audio, else the one train.json names.
    let corpus = path.join(o.run, 'corpus');
    const trainJson = path.join(o.run, 'train.json');
    if (!fs.existsSync(manifestPath(corpus)) && fs.existsSync(trainJson)) {
      try {
        const named = JSON.parse(fs.readFileSync(trainJson, 'utf8')).corpus;
        // Relative to the run folder (older runs stored an absolute path, which resolve keeps).
        if (typeof named === 'string') corpus = path.resolve(o.run, named);
      } catch {
        // an unreadable train.json: fall through to the clear error below
      }
    }
    if (!fs.existsSync(manifestPath(corpus))) {
      throw new UsageError(
        `run ${o.run} has no prepared corpus at ${corpus} (the trainer prepares it there); ` +
          'pass --data <corpus | audio folder | file>',
      );
    }
    return { ...readCorpus(corpus, o.split as Split, o.limitFiles), skipped: [] };
  }
  if (!fs.existsSync(o.data)) throw new UsageError(`--data ${o.data} does not exist`);
  if (fs.statSync(o.data).isDirectory() && fs.existsSync(manifestPath(o.data)))
    return { ...readCorpus(o.data, o.split as Split, o.limitFiles), skipped: [] };
  // Plain audio: every file under the path, whatever its folder says about splits.
  const scan = scanInputs([o.data], { validFraction: 0, testFraction: 0 });
  const skipped = [...scan.skipped];
  const files: EvalFile[] = [];
  for (const f of scan.files) {
    if (o.limitFiles !== undefined && files.length >= o.limitFiles) break;
    try {
      const a = await decodeAudio(f.source, MODEL_RATE);
      files.push({ path: f.display, codes: muLawEncode(a.samples) });
    } catch (e) {
      skipped.push({ source: f.source, reason: (e as Error).message });
    }
  }
  if (files.length === 0)
    throw new UsageError(
      `--data ${o.data}: no decodable audio` +
        `${skipped.length ? ` (${skipped.length} file(s) failed: ${skipped[0].reason})` : ''}`,
    );
  return { files, source: o.data, skipped };
}
