import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { runInfo } from './info.js';
import { UsageError } from './options.js';
import { loadPipeline, type PipelineFile, seededRuns, STEP_KINDS } from './pipeline-file.js';
import { runPrepare } from './prepare.js';
import { EVAL_DEFAULTS, runEval } from './eval.js';
import { runTrain, TRAIN_DEFAULTS } from './train.js';
import { GENERATE_DEFAULTS, runGenerate } from './generate.js';
import { firstFileCodes, runAttentionStep } from './pipeline-steps.js';
import type { Split } from '../data/manifest.js';
import { summarizeRun } from '../report/run-summary.js';
import { writeReports } from '../report/write-reports.js';
import { describeRunConfig } from './report.js';
import { posixRelative } from '../util/paths.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

/**
 * Ctrl-C (or SIGTERM) during a train step: training saved its checkpoint, and the steps after it
 * must not run on a half-trained model. Exits with the shell's status for the signal.
 */
export class PipelineStopped extends UserError {
  override readonly exitCode: number;

  constructor(message: string, signal: 'SIGINT' | 'SIGTERM') {
    super(message);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .summary('run a whole experiment described in a YAML file')
    .description(
      'Run the steps of a pipeline file in order. Inputs are read relative to the current folder; ' +
        "everything a step writes goes under the file's `workdir` (override with --workdir). " +
        `Step kinds: ${STEP_KINDS.join(', ')}.`,
    )
    .argument('<file>', 'a pipeline YAML, e.g. pipelines/quickstart.yaml')
    .option('--workdir <dir>', "write outputs here instead of the file's workdir")
    .option('--data <folder>', 'audio to run on: sets the pipeline variable ${data}')
    .option('--set <name=value...>', 'set other pipeline variables (${name} in the file)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech pipeline pipelines/quickstart.yaml\n' +
        '  ctspeech pipeline pipelines/speech-compare-cpu.yaml --data corpora/asterisk-en\n' +
        '  ctspeech pipeline pipelines/speech-compare-cpu.yaml --data my-audio/ --workdir runs/mine \\\n' +
        '      --set seeds=0 --set budget=409600',
    )
    .action(async (file: string, o: { workdir?: string; data?: string; set?: string[] }) => {
      const vars: Record<string, string> = {};
      for (const kv of o.set ?? []) {
        const eq = kv.indexOf('=');
        if (eq < 1) throw new UsageError(`--set takes name=value, got ${kv}`);
        vars[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      if (o.data !== undefined) {
        if (!fs.existsSync(o.data)) throw new UsageError(`--data ${o.data} does not exist`);
        vars.data = o.data;
      }
      await runPipeline(loadPipeline(file, vars), o.workdir);
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
      await runPrepare({
        inputs: s.inputs,
        out: inWork(s.out),
        sampleRate: s.sampleRate,
        validFraction: s.validFraction,
        testFraction: s.testFraction,
        trimDb: s.trimDb ?? null,
        workers: s.workers,
        prune: s.prune,
      });
    } else if ('info' in step) {
      const s = step.info;
      console.log(`\n== step ${i + 1}/${p.steps.length}: info ${inWork(s.corpus)}`);
      runInfo(inWork(s.corpus), { plot: s.plot === null ? null : s.plot ? inWork(s.plot) : undefined });
    } else if ('train' in step) {
      const s = step.train;
      // A data path that a previous step wrote lives in workdir; anything else is the user's audio.
      const data = (Array.isArray(s.data) ? s.data : [s.data]).map((d) => (fs.existsSync(inWork(d)) ? inWork(d) : d));
      const d = TRAIN_DEFAULTS;
      for (const { run, seed } of seededRuns(s.run, s.seeds)) {
        console.log(
          `\n== step ${i + 1}/${p.steps.length}: train ${s.model ?? s.config ?? 'ct-cpu'} ` +
            `on ${data.join(' ')} -> ${inWork(run)}`,
        );
        const r = await runTrain(data, {
          model: s.model ?? 'ct-cpu',
          config: s.config,
          run: inWork(run),
          steps: s.steps ?? d.steps,
          samples: s.samples,
          minutes: s.minutes,
          batch: s.batch ?? d.batch,
          lr: s.lr ?? d.lr,
          minLr: s.minLr ?? d.minLr,
          warmup: s.warmup ?? d.warmup,
          clip: s.clip ?? d.clip,
          accumulate: s.accumulate ?? d.accumulate,
          validEvery: s.validEvery ?? d.validEvery,
          validSamples: s.validSamples ?? d.validSamples,
          checkpointEvery: s.checkpointEvery ?? d.checkpointEvery,
          seed: seed ?? s.seed ?? d.seed,
          backend: 'auto',
          restart: s.restart,
          engine: s.engine ?? d.engine,
          device: d.device,
        });
        if (r.stoppedBy) {
          const later = p.steps.length - (i + 1);
          throw new PipelineStopped(
            `${r.stoppedBy} during step ${i + 1}/${p.steps.length} (train ${inWork(run)}): training ` +
              `${r.finished ? 'finished' : 'stopped'} at step ${r.step} of ${r.steps}, checkpoint saved` +
              `${later ? `; the ${later} later step(s) did not run` : ''}. Rerun the same command to resume: ` +
              `ctspeech ${process.argv.slice(2).join(' ')}`,
            r.stoppedBy,
          );
        }
      }
    } else if ('eval' in step) {
      const s = step.eval;
      const split = s.split ?? EVAL_DEFAULTS.split;
      for (const { run } of seededRuns(s.run, s.seeds)) {
        console.log(
          `\n== step ${i + 1}/${p.steps.length}: eval ${inWork(run)} on ${s.data ?? 'its corpus'} (${split})`,
        );
        const r = await runEval({
          run: inWork(run),
          data: s.data ? (fs.existsSync(inWork(s.data)) ? inWork(s.data) : s.data) : undefined,
          split,
          memory: s.memory,
          compressedMemory: s.compressedMemory,
          batch: EVAL_DEFAULTS.batch,
          backend: EVAL_DEFAULTS.backend,
          engine: s.engine ?? EVAL_DEFAULTS.engine,
          device: EVAL_DEFAULTS.device,
          limitFiles: s.limitFiles,
        });
        writeFileAtomic(path.join(inWork(run), `eval-${split}.json`), JSON.stringify(r, null, 2) + '\n');
      }
    } else if ('generate' in step) {
      const s = step.generate;
      if (s.out && s.seeds && s.seeds.length > 1)
        throw new UsageError(
          `generate step ${i + 1}: out cannot be combined with several seeds ` +
            "(each seed's run writes generated/continuation.wav)",
        );
      let promptCodes: Uint8Array | undefined;
      let prompt = s.prompt;
      const fromCorpus = s.prompt ? /^corpus:(train|valid|test)$/.exec(s.prompt) : null;
      if (fromCorpus) {
        if (!s.corpus) throw new UsageError(`generate step ${i + 1}: prompt ${s.prompt} needs corpus: <dir>`);
        const first = firstFileCodes(inWork(s.corpus), fromCorpus[1] as Split);
        promptCodes = first.codes;
        prompt = first.path;
      } else if (prompt && !fs.existsSync(prompt) && fs.existsSync(inWork(prompt))) {
        prompt = inWork(prompt);
      }
      for (const seeded of seededRuns(s.run, s.seeds)) {
        const run = inWork(seeded.run);
        console.log(
          `\n== step ${i + 1}/${p.steps.length}: generate ${s.seconds ?? GENERATE_DEFAULTS.seconds} s ` +
            `with ${run}${prompt ? ` from ${prompt}` : ''}`,
        );
        const summary = await runGenerate({
          run,
          prompt,
          promptCodes,
          promptSeconds: s.promptSeconds,
          promptStart: s.promptStart,
          spectrogram: s.spectrogram ?? true,
          seconds: s.seconds ?? GENERATE_DEFAULTS.seconds,
          temperature: s.temperature ?? GENERATE_DEFAULTS.temperature,
          topK: s.topK,
          topP: s.topP,
          seed: s.seed ?? GENERATE_DEFAULTS.seed,
          count: 1,
          out: s.out ? inWork(s.out) : path.join(run, 'generated', 'continuation.wav'),
          engine: GENERATE_DEFAULTS.engine,
          device: GENERATE_DEFAULTS.device,
        });
        // Paths relative to the run folder, so the run reads the same wherever it is moved or committed.
        const rel = (f: string) => posixRelative(run, f);
        const paths = {
          files: summary.files.map(rel),
          promptFile: summary.promptFile && rel(summary.promptFile),
          realFile: summary.realFile && rel(summary.realFile),
          spectrograms: summary.spectrograms.map(rel),
        };
        writeFileAtomic(
          path.join(run, 'generate.json'),
          JSON.stringify({ ...summary, ...paths, prompt: prompt ?? null }, null, 2) + '\n',
        );
      }
    } else if ('attention' in step) {
      const s = step.attention;
      const split = s.split ?? 'test';
      for (const seeded of seededRuns(s.run, s.seeds)) {
        const run = inWork(seeded.run);
        console.log(
          `\n== step ${i + 1}/${p.steps.length}: attention by memory age of ${run} on ${inWork(s.corpus)} (${split})`,
        );
        await runAttentionStep(run, inWork(s.corpus), split, s.segments ?? 64);
      }
    } else {
      const s = step.report;
      const out = inWork(s.out);
      console.log(`\n== step ${i + 1}/${p.steps.length}: report -> ${out}`);
      const summaries = s.runs.flatMap((group) =>
        seededRuns(group, s.seeds).map(({ run, seed }) =>
          summarizeRun(run, inWork(run), describeRunConfig, { group, seed: seed ?? null }),
        ),
      );
      const html = await writeReports(out, s.title ?? `ctspeech: ${p.name}`, summaries, s.intro);
      console.log(`report written: ${out}\nopen in a browser: ${path.resolve(html)}`);
    }
  }
}
