/**
 * What a run folder holds, for the two cases where training must not simply write over it: results
 * of a run that can no longer be resumed (refused, so nothing trained is lost by accident), and
 * --restart (moved aside into replaced-<time>/, never deleted).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PARAMS_FILE } from '../models/model-files.js';
import { LOCK_FILE } from '../util/folder-lock.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import { readMetrics } from './curves.js';

export const METRICS_FILE = 'metrics.jsonl';
/** The prepared audio of a run trained on audio folders: a cache of the audio, not part of the run. */
export const CORPUS_DIR = 'corpus';
const REPLACED_PREFIX = 'replaced-';

/** What --restart does with the folder, for messages that offer it. */
export const restartHint = (run: string) =>
  `--restart (a pipeline's train step: restart: true) to start over (the run's files are moved into ` +
  `${path.join(run, `${REPLACED_PREFIX}<time>`)}/, not deleted)`;

/** Trained results in `run` that a fresh start would overwrite, each described for a message. */
export function trainedLeftovers(run: string): string[] {
  const found: string[] = [];
  if (fs.existsSync(path.join(run, PARAMS_FILE))) found.push(PARAMS_FILE);
  const steps = new Set(
    readMetrics(path.join(run, METRICS_FILE))
      .filter((m) => m.nll !== undefined)
      .map((m) => m.step),
  );
  if (steps.size) found.push(`${METRICS_FILE} (${steps.size} steps)`);
  return found;
}

/** Folder-safe local time, e.g. 2026-12-03T10-22-05. */
function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
    `${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`
  );
}

/**
 * Moves everything in `run` but its prepared audio, its lock and earlier replaced-* folders into a
 * new replaced-<time>/ folder. The checkpoint moves last: a restart cut short leaves a folder that
 * still resumes (or is refused as leftovers), never one that silently loses files.
 */
export function setAside(run: string): { dir: string; moved: string[] } | null {
  const keep = (n: string) => n === CORPUS_DIR || n === LOCK_FILE || n.startsWith(REPLACED_PREFIX);
  const names = fs
    .readdirSync(run)
    .filter((n) => !keep(n))
    .sort((a, b) => Number(a === CHECKPOINT_FILE) - Number(b === CHECKPOINT_FILE) || a.localeCompare(b));
  if (!names.length) return null;
  const base = path.join(run, REPLACED_PREFIX + stamp());
  let dir = base;
  for (let k = 2; fs.existsSync(dir); k++) dir = `${base}-${k}`;
  fs.mkdirSync(dir);
  for (const n of names) fs.renameSync(path.join(run, n), path.join(dir, n));
  return { dir, moved: names };
}
