import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isAudioPath } from '../audio/decode.js';
import type { Split } from './manifest.js';
import { UserError } from '../util/errors.js';

export interface ScannedFile {
  source: string;
  /** root basename + posix path inside the root: stable across machines, used for hashing */
  display: string;
  size: number;
  mtimeMs: number;
  split: Split;
  splitBy: 'folder' | 'hash';
}

export interface ScanResult {
  files: ScannedFile[];
  skipped: { source: string; reason: string }[];
  /** files present but not audio by extension (README, images ...), not an error */
  ignored: number;
}

export interface SplitFractions {
  validFraction: number;
  testFraction: number;
}

export class InputError extends UserError {}

const FOLDER_SPLITS: Record<string, Split> = {
  train: 'train',
  valid: 'valid',
  validation: 'valid',
  dev: 'valid',
  test: 'test',
};

/**
 * The split of a path by hash: a file keeps its split when others are added or removed,
 * and on every machine, because only its own relative path decides.
 */
export function hashSplit(relPath: string, f: SplitFractions): Split {
  const h = crypto.createHash('sha1').update(relPath).digest();
  const u = h.readUInt32BE(0) / 2 ** 32;
  if (u < f.testFraction) return 'test';
  if (u < f.testFraction + f.validFraction) return 'valid';
  return 'train';
}

/** Recursively find audio files under each input (a folder or a single file). */
export function scanInputs(inputs: string[], fractions: SplitFractions): ScanResult {
  if (inputs.length === 0) throw new InputError('no input folders given');
  const result: ScanResult = { files: [], skipped: [], ignored: 0 };
  const seen = new Set<string>();
  for (const input of inputs) {
    const root = path.resolve(input);
    let st: fs.Stats;
    try {
      st = fs.statSync(root);
    } catch {
      throw new InputError(`input ${input} does not exist`);
    }
    const rootName = path.basename(root);
    if (st.isFile()) {
      addFile(root, rootName, rootName, null, st, fractions, result, seen);
      continue;
    }
    if (!st.isDirectory()) throw new InputError(`input ${input} is neither a folder nor a file`);
    const hasSplitFolders = safeReaddir(root, result).some(
      (d) => d.isDirectory() && FOLDER_SPLITS[d.name.toLowerCase()],
    );
    walk(root, root, new Set([fs.realpathSync(root)]));

    function walk(dir: string, top: string, visited: Set<string>): void {
      const entries = safeReaddir(dir, result).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const full = path.join(dir, e.name);
        let s: fs.Stats;
        try {
          s = fs.statSync(full);
        } catch (err) {
          result.skipped.push({
            source: full,
            reason: `cannot stat: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          });
          continue;
        }
        if (s.isDirectory()) {
          const real = fs.realpathSync(full);
          if (visited.has(real)) continue; // a symlink loop
          walk(full, top, new Set([...visited, real]));
        } else if (s.isFile()) {
          const rel = path.relative(top, full).split(path.sep).join('/');
          const first = rel.split('/')[0].toLowerCase();
          const folderSplit = hasSplitFolders && rel.includes('/') ? (FOLDER_SPLITS[first] ?? null) : null;
          addFile(full, `${rootName}/${rel}`, rel, folderSplit, s, fractions, result, seen);
        }
      }
    }
  }
  result.files.sort((a, b) => (a.display < b.display ? -1 : a.display > b.display ? 1 : 0));
  return result;
}

function addFile(
  full: string,
  display: string,
  hashKey: string,
  folderSplit: Split | null,
  st: fs.Stats,
  f: SplitFractions,
  result: ScanResult,
  seen: Set<string>,
): void {
  if (!isAudioPath(full)) {
    result.ignored++;
    return;
  }
  if (seen.has(full)) return;
  seen.add(full);
  // Hash the path inside the root, so renaming or moving the root folder keeps every split.
  const split = folderSplit ?? hashSplit(hashKey, f);
  result.files.push({
    source: full,
    display,
    size: st.size,
    mtimeMs: st.mtimeMs,
    split,
    splitBy: folderSplit ? 'folder' : 'hash',
  });
}

function safeReaddir(dir: string, result: ScanResult): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    result.skipped.push({
      source: dir,
      reason: `cannot read folder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    });
    return [];
  }
}
