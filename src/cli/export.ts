import path from 'node:path';
import type { Command } from 'commander';
import { checkOnnxModel } from '../engine/onnx-check.js';
import type { GraphSpec } from '../models/family.js';
import { ensureGraph } from '../infer/onnx-export.js';
import { describeModel, familyOf } from '../models/registry.js';
import fs from 'node:fs';
import { formatTable } from '../report/table.js';
import { loadRun } from '../models/model-files.js';
import { intArg, UsageError } from './options.js';

interface ExportFlags {
  run: string;
  batch: string;
  evalBatch: number;
}

function batches(list: string): number[] {
  const out = list.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((b) => !Number.isInteger(b) || b < 1 || b > 1024))
    throw new UsageError(`--batch must be a comma-separated list of integers in 1..1024, got ${list}`);
  return [...new Set(out)];
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .summary('trace a trained model into ONNX graphs for onnxruntime (eval and generate do it on demand)')
    .description(
      "Trace the run's model, with its weights, into standard ONNX graphs (opset 17) under <run>/onnx:\n" +
        '  segment  B rows x one segment: evaluation and prompt priming\n' +
        '  step     one sample per row, with explicit state inputs and outputs\n' +
        '           (cached memory keys and values for the transformers, the\n' +
        '           per-layer queues for WaveNet)\n' +
        '  roll     transformers: the memory update and compression every n_s samples\n' +
        '  keys     transformers: memory keys/values after priming\n\n' +
        'Graphs are named by shape and config; <run>/onnx/export.json records the weights they embed, ' +
        'so `eval` and `generate` re-export when the run has been trained further. Any onnxruntime ' +
        '(Python, C++, web) can load the files; their inputs and outputs are listed in docs/onnx.md.',
    )
    .requiredOption('--run <dir>', 'a run directory holding config.json and weights.safetensors')
    .option('--batch <list>', 'generation batch sizes to export step graphs for', '1,8')
    .option('--eval-batch <n>', 'rows of the evaluation segment graph', intArg(1, 1024), 8)
    .addHelpText(
      'after',
      '\nExamples:\n  ctspeech export --run runs/ct\n  ctspeech export --run runs/wavenet --batch 1,4,16',
    )
    .action((o: ExportFlags) => {
      runExport(o);
    });
}

export function runExport(o: ExportFlags): string[] {
  const sizes = batches(o.batch);
  const { cfg, params } = loadRun(o.run);
  console.log(describeModel(cfg));
  const family = familyOf(cfg);
  const specs: GraphSpec[] = [{ kind: 'segment', batch: o.evalBatch, length: family.scoreLength(cfg) }];
  for (const b of sizes) {
    for (const kind of family.generationGraphs(cfg))
      specs.push({ kind, batch: b, length: kind === 'segment' ? family.primeLength(cfg) : 1 });
  }
  const rows: (string | number)[][] = [];
  const files: string[] = [];
  for (const spec of specs) {
    const r = ensureGraph(o.run, cfg, params, spec);
    if (files.includes(r.file)) continue;
    files.push(r.file);
    const problems = checkOnnxModel(fs.readFileSync(r.file));
    rows.push([
      path.basename(r.file),
      spec.kind,
      spec.batch,
      spec.length,
      `${(r.bytes / 1e6).toFixed(2)} MB`,
      r.replaced ? 're-exported' : r.exported ? 'exported' : 'up to date',
      problems.length ? problems[0] : 'clean',
    ]);
  }
  console.log(formatTable(['file', 'graph', 'batch', 'positions', 'size', 'status', 'check'], rows));
  console.log(`graphs in ${path.join(o.run, 'onnx')}`);
  return files;
}
