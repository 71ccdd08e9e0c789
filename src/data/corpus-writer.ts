/** Writing a corpus folder: code binaries, reading ranges back, and clearing what dead writers left. */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { CorpusError, type Split } from './manifest.js';

/** A write into the corpus folder failed; the message names the file and, for a full disk, says so. */
export class CorpusWriteError extends UserError {}

/** The error to throw for an I/O failure while writing `file`: a full disk or a refusal names the file. */
export function writeFailure(e: unknown, file: string, corpusDir: string): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  if (e instanceof UserError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  // No `cause`: the command line words any error chain holding ENOSPC itself, without the file or the corpus.
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new CorpusWriteError(
      `disk full while writing ${file}; the previous corpus in ${corpusDir} (if any) is intact. ` +
        'Free some space there, or prepare into another --out, and run again.',
    );
  if (['EACCES', 'EPERM', 'EROFS', 'EIO', 'EFBIG', 'EMFILE', 'ENFILE'].includes(code))
    return new CorpusWriteError(`cannot write ${file}: ${e.message}`);
  return e;
}

export interface CorpusDir {
  path: string;
  /** undo the folders this run created (only while they are empty): a failed run leaves no trace */
  removeIfCreated(): void;
}

/**
 * Creates --out one level at a time. Node's recursive mkdir spins forever where mkdir answers ENOENT
 * for a parent that exists (/proc/foo): a plain mkdir per missing level fails at once instead.
 */
export function ensureCorpusDir(given: string): CorpusDir {
  const out = path.resolve(given);
  const missing: string[] = [];
  for (let d = out; ; d = path.dirname(d)) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(d);
    } catch {
      /* missing: created below */
    }
    if (st && !st.isDirectory())
      throw new CorpusWriteError(
        d === out ? `output ${given} exists and is not a folder` : `output ${given}: ${d} is a file, not a folder`,
      );
    if (st || path.dirname(d) === d) break;
    missing.unshift(d);
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
      created.push(d);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && fs.statSync(d).isDirectory()) continue; // another process made it meanwhile
      for (const c of created.reverse()) fs.rmdirSync(c);
      throw new CorpusWriteError(
        `cannot create output folder ${given} (${err.message}); choose an --out on a writable disk`,
      );
    }
  }
  return {
    path: out,
    removeIfCreated() {
      for (const d of [...created].reverse()) {
        try {
          fs.rmdirSync(d);
        } catch {
          return; // not empty: something else lives there now
        }
      }
    },
  };
}

/** Appends to a split binary; fsyncs before the manifest that points at it is written. */
export class BinaryWriter {
  private fd: number | null = null;
  offset = 0;
  constructor(
    private readonly file: string,
    private readonly corpusDir = path.dirname(file),
  ) {
    this.io(() => {
      this.fd = fs.openSync(file, 'w');
    });
  }
  write(bytes: Uint8Array): void {
    this.io(() => {
      for (let done = 0; done < bytes.length;)
        done += fs.writeSync(this.fd as number, bytes, done, bytes.length - done);
    });
    this.offset += bytes.length;
  }
  finish(): void {
    this.io(() => {
      fs.fsyncSync(this.fd as number);
      fs.closeSync(this.fd as number);
      this.fd = null;
    });
  }
  abandon(): void {
    try {
      if (this.fd !== null) fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = null;
    fs.rmSync(this.file, { force: true });
  }
  private io(f: () => void): void {
    try {
      f();
    } catch (e) {
      throw writeFailure(e, this.file, this.corpusDir);
    }
  }
}

/** Copy `length` bytes at `offset` of `file` into `w` a block at a time: a long file never sits in memory. */
export function copyRange(file: string, offset: number, length: number, w: BinaryWriter, label: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(length, 1 << 20));
    for (let done = 0; done < length;) {
      const want = Math.min(buf.length, length - done);
      const got = fs.readSync(fd, buf, 0, want, offset + done);
      if (got !== want)
        throw new CorpusError(`${path.basename(file)} is shorter than its manifest says (file ${label})`);
      w.write(buf.subarray(0, got));
      done += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Anything named like a code binary that the manifest does not reference: old generations, crashed runs. */
export function removeStaleBinaries(corpusDir: string, keep: Record<Split, string>): void {
  const live = new Set(Object.values(keep));
  for (const name of fs.readdirSync(corpusDir)) {
    if (/^codes-(train|valid|test)-.*\.u8(\.tmp)?$/.test(name) && !live.has(name))
      fs.rmSync(path.join(corpusDir, name), { force: true });
  }
}
