#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerBench } from './bench.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerGenerate } from './generate.js';
import { registerInfo } from './info.js';
import { failureOf, USAGE_EXIT } from './options.js';
import { registerModel } from './model.js';
import { registerPipeline } from './pipeline.js';
import { registerPrepare } from './prepare.js';
import { registerReport } from './report.js';
import { registerSpectrogram } from './spectrogram.js';
import { registerTrain } from './train.js';

const program = new Command();
program
  .name('ctspeech')
  .description(
    'Model raw speech sample by sample with a Compressive Transformer ' +
      '(Rae et al., ICLR 2020), compared with Transformer-XL and WaveNet by ' +
      'negative log-likelihood per sample.\n\n' +
      'Start with:  ctspeech pipeline pipelines/quickstart.yaml\n' +
      'Then:        ctspeech info runs/quickstart/corpus',
  )
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerPrepare(program);
registerInfo(program);
registerTrain(program);
registerModel(program);
registerPipeline(program);
registerBench(program);
registerEval(program);
registerExport(program);
registerGenerate(program);
registerSpectrogram(program);
registerReport(program);

function fail(e: unknown): never {
  const { message, exitCode } = failureOf(e);
  console.error(`ctspeech: error: ${message}`);
  process.exit(exitCode);
}

// Errors raised outside the command's promise (a stream's 'error' event, a rejected promise nobody
// awaited) end the same way: a full disk is a message, not a stack trace.
process.on('uncaughtException', fail);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Commander has printed its message already. Its own status is 1 for every usage error; the
  // README promises 2 for those, and 0 stays 0 (--help, --version).
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : USAGE_EXIT);
  fail(e);
}
