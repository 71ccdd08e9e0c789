#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { UserError } from '../util/errors.js';
import { registerBench } from './bench.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerGenerate } from './generate.js';
import { registerInfo } from './info.js';
import { registerModel } from './model.js';
import { registerPipeline } from './pipeline.js';
import { registerPrepare } from './prepare.js';
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

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  // RangeError: library functions reject out-of-range arguments with it, naming the argument.
  const known = e instanceof UserError || e instanceof RangeError;
  console.error(`ctspeech: error: ${known ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
  process.exit(e instanceof UserError ? e.exitCode : known ? 2 : 1);
}
