import { machineDescription } from '../util/machine.js';
import type { Command } from 'commander';
import { benchPrepare, type BenchRow } from '../bench/prepare-bench.js';
import { benchTrain } from '../bench/train-bench.js';
import { benchFloor } from '../bench/floor-bench.js';
import { benchInfer } from '../bench/infer-bench.js';
import type { BackendName } from '../engine/backend.js';
import { formatTable } from '../report/table.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .summary('measure the performance figures: prepare, training, evaluation and generation')
    .description(
      'Measure throughput on this machine and print a Markdown table for BENCHMARKS.md.\n' +
        'Medians of repeated runs; nothing here is a pass/fail test.',
    )
    .option(
      '--only <parts>',
      'comma-separated: prepare, train, infer (onnxruntime evaluation and generation), floor (what a ' +
        'generation step cannot beat here: run and kernel overhead, memory bandwidth)',
      'prepare,train,infer,floor',
    )
    .option('--samples <dir>', 'audio to benchmark decoding on', 'samples/speech')
    .option('--presets <names>', 'model presets for the training and inference figures', 'ct-cpu,txl-cpu,wavenet-cpu')
    .option(
      '--backends <names>',
      'engines for the training figures: tfjs backends (wasm, cpu, tensorflow) and onnxruntime',
      'wasm,cpu,onnxruntime',
    )
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { only: string; samples: string; presets: string; backends: string; json?: boolean }) => {
      const parts = o.only.split(',').map((s) => s.trim());
      const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
      const rows: BenchRow[] = [];
      if (parts.includes('prepare')) rows.push(...(await benchPrepare(o.samples, log)));
      if (parts.includes('train'))
        rows.push(
          ...(await benchTrain(o.presets.split(','), o.backends.split(',') as (BackendName | 'onnxruntime')[], {
            log,
          })),
        );
      if (parts.includes('infer')) rows.push(...(await benchInfer(o.presets.split(','), { log })));
      if (parts.includes('floor')) rows.push(...(await benchFloor(o.presets.split(','), { log })));
      const machine = `${machineDescription()}, ${new Date().toISOString().slice(0, 10)}`;
      if (o.json) {
        console.log(JSON.stringify({ machine, rows }, null, 2));
        return;
      }
      console.log(`Machine: ${machine}\n`);
      const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
      console.log(
        formatTable(
          ['benchmark', 'value', 'unit', 'note'],
          rows.map((r) => [r.name, fmt(r.value), r.unit, r.note]),
        ),
      );
    });
}
