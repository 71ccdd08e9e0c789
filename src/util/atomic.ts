import fs from 'node:fs';
import path from 'node:path';
import { processAlive } from './processes.js';

const TEMP_SUFFIX = /\.tmp-(\d+)$/;

/** Write a file so a reader sees the old content or the new, never a torn mix: temp, fsync, rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  // The writer's pid in the name lets removeStaleTemps tell a dead writer's leftover from a live one's.
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    let done = 0;
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/**
 * Removes the `<name>.tmp-<pid>` files in `dir` whose writer is no longer running on this host
 * (kill -9 or a power cut between create and rename); at paper scale each is a whole checkpoint.
 * Returns the names removed.
 */
export function removeStaleTemps(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const name = entry.name;
    const m = TEMP_SUFFIX.exec(name);
    if (!m || entry.isDirectory()) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
