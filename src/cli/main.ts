#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { AudioDecodeError } from '../audio/errors.js';
import { CorpusError } from '../data/manifest.js';
import { BackendError } from '../engine/backend.js';
import { ConfigError } from '../models/config.js';
import { ModelFileError } from '../models/model-files.js';
import { SafetensorsError } from '../models/safetensors.js';
import { CheckpointError } from '../train/checkpoint.js';
import { ScheduleError } from '../train/schedule.js';
import { RunError } from '../train/trainer.js';
import { BatchConfigError } from '../data/batches.js';
import { InputError } from '../data/scan.js';
import { EngineError } from '../infer/ort-executor.js';
import { registerBench } from './bench.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerGenerate } from './generate.js';
import { registerInfo } from './info.js';
import { registerModel } from './model.js';
import { UsageError } from './options.js';
import { registerPipeline } from './pipeline.js';
import { registerPrepare } from './prepare.js';
import { registerTrain } from './train.js';

const program = new Command();
program
  .name('ctspeech')
  .description(
    'Model raw speech sample by sample with a Compressive Transformer\n' +
      '(Rae et al., ICLR 2020), compared with Transformer-XL and WaveNet by\n' +
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
  const known = e instanceof UsageError || e instanceof InputError || e instanceof CorpusError || e instanceof AudioDecodeError || e instanceof ConfigError || e instanceof BackendError || e instanceof ModelFileError || e instanceof SafetensorsError || e instanceof RunError || e instanceof CheckpointError || e instanceof ScheduleError || e instanceof BatchConfigError || e instanceof EngineError || e instanceof RangeError;
  console.error(`ctspeech: error: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}`);
  process.exit(known ? 2 : 1);
}
