import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MU } from '../audio/mulaw.js';
import { removeStaleTemps } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { type FolderLock, lockFolder } from '../util/folder-lock.js';
import type { DecodeJob, DecodeResult } from './decode-worker.js';
import {
  BinaryWriter,
  copyRange,
  type CorpusDir,
  ensureCorpusDir,
  removeStaleBinaries,
  writeFailure,
} from './corpus-writer.js';
import {
  CorpusError,
  type CorpusSettings,
  type FileEntry,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  manifestPath,
  readManifest,
  SPLITS,
  type Split,
  writeManifest,
} from './manifest.js';
import { InputError, scanInputs, type ScannedFile } from './scan.js';
import { DecodePool } from './worker-pool.js';

export interface PrepareOptions {
  inputs: string[];
  out: string;
  sampleRate?: number;
  validFraction?: number;
  testFraction?: number;
  trimDb?: number | null;
  workers?: number;
  /** decode every file again even if unchanged */
  force?: boolean;
  /** allow a run to drop more than half of the corpus's files (they vanished from the inputs, or now fail) */
  prune?: boolean;
  onProgress?: (p: PrepareProgress) => void;
}

export interface PrepareProgress {
  done: number;
  total: number;
  file: string;
  /** seconds of audio written so far */
  audioSeconds: number;
}

export interface PrepareReport {
  corpusDir: string;
  manifest: Manifest;
  decoded: number;
  reused: number;
  removed: number;
  ignored: number;
  skipped: { source: string; reason: string }[];
  /** files kept although their decoder reported damage */
  warnings: { source: string; message: string }[];
  /** things the run changed about what was asked (e.g. fewer workers) */
  notes: string[];
  /** why the previous corpus could not be reused, if it could not */
  rebuiltBecause: string | null;
}

/** Nothing decoded: the corpus folder is left exactly as it was. */
export class NothingPreparedError extends UserError {
  constructor(
    message: string,
    readonly skipped: { source: string; reason: string }[],
  ) {
    super(message);
  }
}

/**
 * Turn folders of audio into a corpus: one uint8 code binary per split plus manifest.json.
 * The manifest rename is the commit point: binaries of a new generation are written under
 * fresh names first, so a crash, Ctrl-C or a full disk leaves the previous corpus intact, and a
 * run that fails or prepares nothing changes nothing. The folder's lock keeps a second prepare out.
 */
export async function prepareCorpus(opts: PrepareOptions): Promise<PrepareReport> {
  const settings: CorpusSettings = {
    sampleRate: opts.sampleRate ?? 16000,
    mu: MU,
    validFraction: opts.validFraction ?? 0.05,
    testFraction: opts.testFraction ?? 0.05,
    trimDb: opts.trimDb ?? null,
  };
  validateSettings(settings);
  const cores = os.availableParallelism();
  const askedWorkers = opts.workers ?? cores;
  if (!(Number.isInteger(askedWorkers) && askedWorkers >= 1))
    throw new InputError(`--workers must be a whole number of at least 1, got ${askedWorkers}`);
  const dir = ensureCorpusDir(opts.out);
  let lock: FolderLock;
  try {
    lock = lockFolder(dir.path, 'prepare');
  } catch (e) {
    dir.removeIfCreated();
    throw writeFailure(e, path.join(dir.path, '.lock'), dir.path);
  }
  let ok = false;
  try {
    const report = await prepareLocked(opts, settings, dir, Math.min(askedWorkers, cores));
    if (askedWorkers > cores)
      report.notes.push(
        `--workers ${askedWorkers} lowered to ${cores}, one per CPU core: more decoder threads only cost memory`,
      );
    ok = true;
    return report;
  } finally {
    lock.release();
    if (!ok) dir.removeIfCreated();
  }
}

async function prepareLocked(
  opts: PrepareOptions,
  settings: CorpusSettings,
  dir: CorpusDir,
  workers: number,
): Promise<PrepareReport> {
  const out = dir.path;
  // A killed writer's temp files are never renamed into place; only the lock makes clearing them safe.
  removeStaleTemps(out);
  const scan = scanInputs(opts.inputs, settings);
  const { previous, old, rebuiltBecause } = loadPrevious(out, settings, opts.force ?? false);
  if (old) removeStaleBinaries(out, old.binaries);
  const unchanged = `${out} was left unchanged`;
  if (scan.files.length === 0)
    throw new NothingPreparedError(
      `no audio found in ${opts.inputs.join(', ')}${old ? `; ${unchanged} (${old.files.length} file(s))` : ''}`,
      scan.skipped,
    );
  checkDrop(old, new Set(scan.files.map((f) => f.source)), opts, 'are no longer found under the inputs');

  const reusable = new Map<string, FileEntry>();
  for (const f of previous?.files ?? []) reusable.set(f.source, f);
  const gen = `${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
  const binaries = { train: `codes-train-${gen}.u8`, valid: `codes-valid-${gen}.u8`, test: `codes-test-${gen}.u8` };
  const jobs = scan.files.map((f) => {
    const prior = reusable.get(f.source);
    return prior && prior.size === f.size && prior.mtimeMs === f.mtimeMs ? { f, prior } : { f, prior: null };
  });
  const toDecode = jobs.filter((j) => !j.prior).length;
  const pool = toDecode ? new DecodePool(Math.min(workers, toDecode)) : null;
  // A bounded window of decodes in flight keeps workers busy while results are written in order.
  const window = Math.max(4, 4 * workers);
  const pending = new Map<number, Promise<DecodeResult>>();
  const spillFile = (id: number) => path.join(out, `.spill-${gen}-${id}.u8.tmp-${process.pid}`);
  let next = 0;
  const launch = () => {
    while (pool && next < jobs.length && pending.size < window) {
      const j = jobs[next];
      if (!j.prior)
        pending.set(
          next,
          pool.run({
            id: next,
            source: j.f.source,
            sampleRate: settings.sampleRate,
            trimDb: settings.trimDb,
            spillFile: spillFile(next),
          } satisfies DecodeJob),
        );
      next++;
    }
  };

  const writers: Partial<Record<Split, BinaryWriter>> = {};
  const entries: FileEntry[] = [];
  const skipped = [...scan.skipped];
  const warnings: PrepareReport['warnings'] = [];
  let decoded = 0;
  let reused = 0;
  let audioSamples = 0;
  let committed = false;
  try {
    for (const s of SPLITS) writers[s] = new BinaryWriter(path.join(out, binaries[s]));
    for (let i = 0; i < jobs.length; i++) {
      launch();
      const { f, prior } = jobs[i];
      const w = writers[f.split] as BinaryWriter;
      const offset = w.offset;
      let meta: Pick<FileEntry, 'sourceRate' | 'channels' | 'decoder' | 'trimmed' | 'length'> | null = null;
      if (prior) {
        copyRange(path.join(out, previous!.binaries[prior.split]), prior.offset, prior.length, w, prior.path);
        meta = prior;
        reused++;
      } else {
        const r = await pending.get(i)!;
        pending.delete(i);
        if (!r.ok && r.io) throw writeFailure(Object.assign(new Error(r.io.message), r.io), r.io.file, out);
        if (!r.ok) skipped.push({ source: f.source, reason: r.reason });
        else {
          if (r.codes) w.write(r.codes);
          else {
            copyRange(spillFile(i), 0, r.length, w, f.display);
            fs.rmSync(spillFile(i), { force: true });
          }
          for (const message of r.warnings) warnings.push({ source: f.source, message });
          meta = r;
          decoded++;
        }
      }
      if (meta) {
        entries.push(entryOf(f, offset, meta));
        audioSamples += meta.length;
      }
      opts.onProgress?.({
        done: i + 1,
        total: jobs.length,
        file: f.display,
        audioSeconds: audioSamples / settings.sampleRate,
      });
    }
    if (entries.length === 0)
      throw new NothingPreparedError(
        `no audio could be prepared from ${opts.inputs.join(', ')}${old ? `; ${unchanged}` : ''}`,
        skipped,
      );
    checkDrop(old, new Set(entries.map((f) => f.source)), opts, 'vanished from the inputs or could not be decoded');
    for (const w of Object.values(writers)) w.finish();
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      createdAt: new Date().toISOString(),
      settings,
      binaries,
      files: entries,
      skipped,
    };
    try {
      writeManifest(out, manifest);
    } catch (e) {
      throw writeFailure(e, manifestPath(out), out);
    }
    committed = true;
    removeStaleBinaries(out, binaries);
    const current = new Set(scan.files.map((f) => f.source));
    const removed = (old?.files ?? []).filter((f) => !current.has(f.source)).length;
    return {
      corpusDir: out,
      manifest,
      decoded,
      reused,
      removed,
      ignored: scan.ignored,
      skipped,
      warnings,
      notes: [],
      rebuiltBecause,
    };
  } finally {
    if (!committed) for (const w of Object.values(writers)) w.abandon();
    await pool?.close();
    // Spill files of decodes still in flight when the run stopped.
    for (const name of fs.readdirSync(out))
      if (name.startsWith(`.spill-${gen}-`)) fs.rmSync(path.join(out, name), { force: true });
  }
}

/**
 * A run may drop files from a corpus (they left the inputs, or no longer decode), but losing most of
 * it at once is far more often an unmounted drive or a moved folder than a decision.
 */
function checkDrop(old: Manifest | null, kept: Set<string>, opts: PrepareOptions, why: string): void {
  if (!old || opts.prune) return;
  const gone = old.files.filter((f) => !kept.has(f.source));
  if (gone.length * 2 <= old.files.length) return;
  const examples = gone
    .slice(0, 3)
    .map((f) => f.source)
    .join(', ');
  throw new InputError(
    `${gone.length} of the ${old.files.length} files in corpus ${opts.out} ${why} (e.g. ${examples}); ` +
      'refusing to drop more than half of the corpus, which was left unchanged. If the inputs are on a drive ' +
      'that is not mounted, or were moved, make them available and run again; to remove these files from ' +
      'the corpus, run again with --prune.',
  );
}

function validateSettings(s: CorpusSettings): void {
  if (!Number.isInteger(s.sampleRate) || s.sampleRate < 1000 || s.sampleRate > 384000)
    throw new InputError(`--sample-rate must be an integer between 1000 and 384000, got ${s.sampleRate}`);
  for (const [flag, v] of [
    ['--valid', s.validFraction],
    ['--test', s.testFraction],
  ] as const) {
    if (!(v >= 0 && v < 1)) throw new InputError(`${flag} must be a fraction in [0, 1), got ${v}`);
  }
  if (s.validFraction + s.testFraction >= 1)
    throw new InputError(
      `--valid + --test must leave something to train on (got ${s.validFraction} + ${s.testFraction})`,
    );
  if (s.trimDb !== null && !(s.trimDb < 0 && s.trimDb > -200))
    throw new InputError(`--trim-db must be a negative dBFS level such as -50, got ${s.trimDb}`);
}

/**
 * The previous manifest: `previous` when its codes may be reused, `old` whenever it is readable
 * (what a run would drop is measured against it even when everything is decoded again).
 */
function loadPrevious(
  out: string,
  s: CorpusSettings,
  force: boolean,
): { previous: Manifest | null; old: Manifest | null; rebuiltBecause: string | null } {
  if (!fs.existsSync(manifestPath(out))) return { previous: null, old: null, rebuiltBecause: null };
  let m: Manifest;
  try {
    m = readManifest(out);
  } catch (e) {
    if (e instanceof CorpusError)
      return { previous: null, old: null, rebuiltBecause: `previous manifest unreadable (${e.message})` };
    throw e;
  }
  const rebuild = (why: string) => ({ previous: null, old: m, rebuiltBecause: why });
  if (force) return rebuild('--force');
  const p = m.settings;
  if (p.sampleRate !== s.sampleRate) return rebuild(`sample rate changed (${p.sampleRate} -> ${s.sampleRate} Hz)`);
  if (p.trimDb !== s.trimDb) return rebuild(`trim threshold changed (${p.trimDb} -> ${s.trimDb})`);
  for (const split of SPLITS) {
    const bin = path.join(out, m.binaries[split]);
    const need = m.files.filter((f) => f.split === split).reduce((a, f) => Math.max(a, f.offset + f.length), 0);
    if (!fs.existsSync(bin) || fs.statSync(bin).size < need)
      return rebuild(`previous ${m.binaries[split]} is missing or truncated`);
  }
  return { previous: m, old: m, rebuiltBecause: null };
}

function entryOf(
  f: ScannedFile,
  offset: number,
  meta: Pick<FileEntry, 'sourceRate' | 'channels' | 'decoder' | 'trimmed' | 'length'>,
): FileEntry {
  return {
    path: f.display,
    source: f.source,
    size: f.size,
    mtimeMs: f.mtimeMs,
    split: f.split,
    splitBy: f.splitBy,
    offset,
    length: meta.length,
    sourceRate: meta.sourceRate,
    channels: meta.channels,
    decoder: meta.decoder,
    trimmed: meta.trimmed,
  };
}
