import os from 'node:os';

/** The machine in one line, for train.json, benchmarks and reports: CPU, threads, memory, Node. */
export function machineDescription(): string {
  return (
    `${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} threads, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`
  );
}
