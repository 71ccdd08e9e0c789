import os from 'node:os';
import type { Command } from 'commander';
import { benchPrepare } from '../bench/prepare-bench.js';
import { formatTable } from '../report/table.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .summary('measure the performance figures (prepare; training and inference as they land)')
    .description('Measure throughput on this machine and print a Markdown table for BENCHMARKS.md.\nMedians of repeated runs; nothing here is a pass/fail test.')
    .option('--samples <dir>', 'audio to benchmark decoding on', 'samples/speech')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { samples: string; json?: boolean }) => {
      const rows = await benchPrepare(o.samples, (s) => process.stderr.write(`bench: ${s}\n`));
      const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} threads, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
      if (o.json) {
        console.log(JSON.stringify({ machine, rows }, null, 2));
        return;
      }
      console.log(`Machine: ${machine}\n`);
      const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
      console.log(formatTable(['benchmark', 'value', 'unit', 'note'], rows.map((r) => [r.name, fmt(r.value), r.unit, r.note])));
    });
}
