import type { Command } from 'commander';
import { NothingPreparedError, prepareCorpus, type PrepareOptions, type PrepareReport } from '../data/prepare.js';
import { corpusStats } from '../data/stats.js';
import { formatHours, formatTable } from '../report/table.js';
import { floatArg, intArg } from './options.js';
import { Progress } from './progress.js';

export function registerPrepare(program: Command): void {
  program
    .command('prepare')
    .summary('decode folders of audio into a mu-law corpus with train/valid/test splits')
    .description(
      'Decode every audio file under the given folders (recursively) to mono at --sample-rate, quantize it ' +
        'to 256 mu-law codes (WaveNet companding, mu = 255) and store one code binary per split plus a ' +
        'manifest.json in --out. Splits come from train/ valid/ (or validation/, dev/) test/ subfolders when ' +
        "an input has them, otherwise from a hash of each file's path (stable across runs and machines). " +
        'Running prepare again on the same output decodes only new or changed files and drops files that ' +
        'are gone from the inputs; a run that fails or finds no audio leaves the corpus as it was, and one ' +
        'that would drop more than half of it stops and asks for --prune.\n\n' +
        'WAV (PCM 8/16/24/32-bit, float 32/64, extensible) is read natively; FLAC, MP3, Ogg/Opus, G.722, M4A ' +
        'and anything else ffmpeg reads go through ffmpeg (bundled; override with FFMPEG_PATH). ' +
        'Files that cannot be decoded are listed with the reason and skipped.',
    )
    .argument('<inputs...>', 'folders (or single files) of audio')
    .requiredOption('-o, --out <dir>', 'corpus folder to create or update')
    .option('-r, --sample-rate <hz>', 'target sample rate', intArg(1000, 384000), 16000)
    .option(
      '--valid <fraction>',
      'share of hashed files for the validation split',
      floatArg(0, 1, { exclusiveMax: true }),
      0.05,
    )
    .option(
      '--test <fraction>',
      'share of hashed files for the test split',
      floatArg(0, 1, { exclusiveMax: true }),
      0.05,
    )
    .option(
      '--trim-db <dBFS>',
      'cut leading/trailing silence quieter than this level, e.g. -50 (off by default)',
      floatArg(-200, -0.001),
    )
    .option('-j, --workers <n>', 'decoder threads (default and most: one per CPU core)', intArg(1, 256))
    .option('--force', 'decode every file again, ignoring the previous corpus')
    .option(
      '--prune',
      'let this run drop more than half of the corpus: files that left the inputs (or no longer decode) ' +
        'are removed from it. Without it such a run stops and changes nothing, because an unmounted drive ' +
        'or a moved folder looks just like deleted files',
    )
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech prepare samples/speech --out corpora/samples\n' +
        '  ctspeech prepare ~/audio/a ~/audio/b --out corpora/ab --sample-rate 16000 --trim-db -50\n' +
        '  ctspeech prepare ~/audio/a --out corpora/ab --prune    # b was removed on purpose: drop its files',
    )
    .action(
      async (
        inputs: string[],
        o: {
          out: string;
          sampleRate: number;
          valid: number;
          test: number;
          trimDb?: number;
          workers?: number;
          force?: boolean;
          prune?: boolean;
          json?: boolean;
        },
      ) => {
        await runPrepare(
          {
            inputs,
            out: o.out,
            sampleRate: o.sampleRate,
            validFraction: o.valid,
            testFraction: o.test,
            trimDb: o.trimDb ?? null,
            workers: o.workers,
            force: o.force,
            prune: o.prune,
          },
          { json: o.json },
        );
      },
    );
}

export async function runPrepare(opts: PrepareOptions, { json = false } = {}): Promise<PrepareReport> {
  const bar = new Progress('prepare');
  let report: PrepareReport;
  try {
    report = await prepareCorpus({
      ...opts,
      onProgress: (p) => bar.update(p.done, p.total, `${formatHours(p.audioSeconds / 3600)} of audio`),
    });
  } catch (e) {
    bar.done();
    if (e instanceof NothingPreparedError) printSkipped(e.skipped);
    throw e;
  }
  bar.done();
  for (const n of report.notes) console.error(`note: ${n}`);
  if (json) {
    console.log(
      JSON.stringify(
        {
          corpus: report.corpusDir,
          decoded: report.decoded,
          reused: report.reused,
          removed: report.removed,
          ignored: report.ignored,
          skipped: report.skipped,
          warnings: report.warnings,
          notes: report.notes,
          rebuiltBecause: report.rebuiltBecause,
          splits: summary(report),
        },
        null,
        2,
      ),
    );
    return report;
  }
  const s = report.manifest.settings;
  console.log(
    `Corpus ${report.corpusDir} (${s.sampleRate} Hz, mu-law mu=${s.mu}` +
      `${s.trimDb !== null ? `, silence trimmed below ${s.trimDb} dBFS` : ''})`,
  );
  if (report.rebuiltBecause) console.log(`  rebuilt from scratch: ${report.rebuiltBecause}`);
  console.log(
    `  decoded ${report.decoded} file(s), reused ${report.reused} unchanged, removed ${report.removed}; ` +
      `${report.ignored} non-audio file(s) ignored`,
  );
  console.log(
    formatTable(
      ['split', 'files', 'duration', 'samples', 'entropy (bits)'],
      summary(report).map((r) => [r.split, r.files, formatHours(r.hours), r.samples, r.entropyBits.toFixed(3)]),
    ),
  );
  printSkipped(report.skipped);
  printWarnings(report.warnings);
  return report;
}

function summary(report: PrepareReport) {
  return corpusStats(report.corpusDir, report.manifest).map(({ histogram: _h, ...rest }) => rest);
}

function printSkipped(skipped: PrepareReport['skipped']): void {
  if (!skipped.length) return;
  console.log(`Skipped ${skipped.length} file(s):`);
  for (const s of skipped) console.log(`  ${s.source}: ${s.reason}`);
}

function printWarnings(warnings: PrepareReport['warnings']): void {
  if (!warnings.length) return;
  console.log(`Prepared with warnings (${warnings.length}):`);
  for (const w of warnings) console.log(`  ${w.source}: ${w.message}`);
}
