/**
 * Exclusive locks on a folder (a corpus being prepared, a run being trained), so that two writers
 * never interleave. The lock is a file created with O_EXCL holding the owner's pid, host and
 * command; a lock whose owner has died on this host (kill -9, power loss) is stale and taken over,
 * so a crash never blocks a folder for good.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from './errors.js';
import { processAlive } from './processes.js';

export const LOCK_FILE = '.lock';

export class FolderLockedError extends UserError {}

interface Owner {
  pid: number;
  host: string;
  since: string;
  command: string;
}

export interface FolderLock {
  readonly file: string;
  release(): void;
}

function readOwner(file: string): Owner | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Owner;
    return Number.isInteger(o.pid) && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** Whether a lock file's owner is gone: dead on this host, or a file left unreadable for a while. */
function stale(file: string): boolean {
  const owner = readOwner(file);
  if (owner) return owner.host === os.hostname() && !processAlive(owner.pid);
  // Unreadable: a writer between create and write (milliseconds), or one that died there.
  try {
    return Date.now() - fs.statSync(file).mtimeMs > 10_000;
  } catch {
    return true;
  }
}

/**
 * mkdir -p one level at a time: Node's recursive mkdir spins forever where mkdir fails with ENOENT
 * under a parent that exists (e.g. anything under /proc).
 */
export function makeFolder(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

const held = new Set<string>();
process.once('exit', () => {
  for (const f of held) fs.rmSync(f, { force: true });
});

/**
 * Takes the folder's lock for `purpose` (e.g. "prepare", "train"), or throws FolderLockedError
 * naming the process that holds it. The lock is released by `release()` or when the process exits.
 */
export function lockFolder(dir: string, purpose: string): FolderLock {
  makeFolder(dir);
  const file = path.join(dir, LOCK_FILE);
  const owner: Owner = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    command: `${purpose}: ${process.argv.slice(1).join(' ')}`.slice(0, 500),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(owner) + '\n');
      } catch (e) {
        // An empty lock (disk full) would block the folder until it looked stale.
        fs.closeSync(fd);
        fs.rmSync(file, { force: true });
        throw e;
      }
      fs.closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (attempt < 3 && stale(file)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const o = readOwner(file);
      const who = o ? `process ${o.pid} on ${o.host} since ${o.since} (${o.command})` : 'another process';
      throw new FolderLockedError(
        `${dir} is in use by ${who}. Wait for it to finish, or use another folder. ` +
          `If that process is gone, remove ${file}.`,
      );
    }
  }
  held.add(file);
  return {
    file,
    release() {
      if (!held.delete(file)) return;
      if (readOwner(file)?.pid === process.pid) fs.rmSync(file, { force: true });
    },
  };
}
