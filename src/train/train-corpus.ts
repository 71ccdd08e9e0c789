/**
 * The corpus a run trains on: a prepared corpus given as data, or audio folders prepared (cached,
 * incrementally) into <run>/corpus. A run continues only on the training audio it started with: the
 * checkpoint records the training split's layout, a resume checks it, and when new audio is about to
 * change <run>/corpus under an unfinished run, the corpus as it was is kept (hard links, no copy) as
 * <run>/corpus-at-step<N> so the run can be finished on it. Also: the windows validation reads.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { filesOf, type Manifest, manifestPath, readManifest } from '../data/manifest.js';
import { NothingPreparedError, prepareCorpus } from '../data/prepare.js';
import type { TrainingWindows } from '../models/family.js';
import { CORPUS_DIR, restartHint } from './run-folder.js';
import { RunError } from './run-options.js';

/**
 * The training split as the batch streams see it: the lengths of its files in order. Stream
 * positions in a checkpoint mean something only over the same layout.
 */
export interface SplitPrint {
  files: number;
  samples: number;
  sha256: string;
}

export function trainSplitPrint(m: Manifest): SplitPrint {
  const lengths = filesOf(m, 'train').map((f) => f.length);
  return {
    files: lengths.length,
    samples: lengths.reduce((a, n) => a + n, 0),
    sha256: createHash('sha256').update(JSON.stringify(lengths)).digest('hex'),
  };
}

const samePrint = (a: SplitPrint, b: SplitPrint) => a.sha256 === b.sha256 && a.samples === b.samples;

const SHOW_SKIPPED = 10;

/** Lists skipped files as prepare does: `listedIn` is the manifest that holds them all, if one was written. */
function logSkipped(
  skipped: { source: string; reason: string }[],
  listedIn: string | null,
  log: (s: string) => void,
): void {
  if (!skipped.length) return;
  log(`skipped ${skipped.length} file(s) that could not be used:`);
  for (const s of skipped.slice(0, SHOW_SKIPPED)) log(`  ${s.source}: ${s.reason}`);
  if (skipped.length > SHOW_SKIPPED)
    log(`  ... and ${skipped.length - SHOW_SKIPPED} more${listedIn ? ` (all listed in ${listedIn})` : ''}`);
}

/**
 * A second name for every file of the corpus (its manifest and binaries), so that the corpus as it
 * is survives a re-prepare: prepare replaces the manifest by rename and writes new binaries under
 * new names, never in place. Null where the filesystem has no hard links.
 */
function linkSnapshot(corpus: string, to: string): string | null {
  try {
    const m = readManifest(corpus);
    fs.rmSync(to, { recursive: true, force: true });
    fs.mkdirSync(to);
    for (const name of ['manifest.json', ...new Set(Object.values(m.binaries))])
      fs.linkSync(path.join(corpus, name), path.join(to, name));
    return to;
  } catch {
    fs.rmSync(to, { recursive: true, force: true });
    return null;
  }
}

const SNAPSHOT_PREFIX = '.corpus-before-';

/**
 * Removes snapshots a killed trainer left (hard links: they cost no space but hide old binaries).
 * Only a trainer holding the run's lock makes them, so with the lock held every one is stale.
 */
export function removeStaleSnapshots(run: string): void {
  for (const name of fs.readdirSync(run))
    if (name.startsWith(SNAPSHOT_PREFIX)) fs.rmSync(path.join(run, name), { recursive: true, force: true });
}

export interface TrainCorpus {
  dir: string;
  /** the corpus as this unfinished run knew it, kept because preparing the audio changed it */
  kept: string | null;
}

/**
 * Where the corpus is: the data itself when it is one, else <run>/corpus, prepared from the audio.
 * `resumedStep` is the checkpoint's step for a run that continues, null for a fresh one.
 */
export async function resolveCorpus(
  data: string[],
  run: string,
  resumedStep: number | null,
  log: (s: string) => void,
): Promise<TrainCorpus> {
  if (data.length === 1 && fs.existsSync(manifestPath(data[0]))) return { dir: data[0], kept: null };
  const out = path.join(run, CORPUS_DIR);
  const before =
    resumedStep !== null && fs.existsSync(manifestPath(out))
      ? linkSnapshot(out, path.join(run, `${SNAPSHOT_PREFIX}${process.pid}`))
      : null;
  log(`preparing ${data.join(', ')} into ${out} (cached: unchanged files are not decoded again)`);
  let r: Awaited<ReturnType<typeof prepareCorpus>>;
  try {
    r = await prepareCorpus({ inputs: data, out });
  } catch (e) {
    if (before) fs.rmSync(before, { recursive: true, force: true });
    if (e instanceof NothingPreparedError && e.skipped.length) {
      logSkipped(e.skipped, null, log);
      const first = e.skipped[0];
      throw new RunError(`${e.message} (${e.skipped.length} file(s) skipped: ${first.source}: ${first.reason})`);
    }
    throw e;
  }
  logSkipped(r.skipped, manifestPath(out), log);
  if (r.manifest.files.length === 0)
    throw new RunError(
      `no decodable audio in ${data.join(', ')}` +
        (r.skipped.length
          ? ` (${r.skipped.length} file(s) skipped: ${r.skipped[0].source}: ${r.skipped[0].reason})`
          : ''),
    );
  let kept: string | null = null;
  if (before) {
    const keep = path.join(run, `${CORPUS_DIR}-at-step${resumedStep}`);
    // An existing one is older still: the corpus this step was trained on, from an earlier attempt.
    if (samePrint(trainSplitPrint(readManifest(before)), trainSplitPrint(r.manifest)) || fs.existsSync(keep))
      fs.rmSync(before, { recursive: true, force: true });
    else {
      fs.renameSync(before, keep);
      kept = keep;
    }
  }
  return { dir: out, kept };
}

/** A corpus in the run folder whose training split has the layout `want`: one to finish the run on. */
function keptCorpusFor(run: string, want: SplitPrint): string | null {
  const prefix = `${CORPUS_DIR}-at-step`;
  for (const name of fs.existsSync(run) ? fs.readdirSync(run).sort() : []) {
    if (!name.startsWith(prefix)) continue;
    try {
      if (samePrint(trainSplitPrint(readManifest(path.join(run, name))), want)) return path.join(run, name);
    } catch {
      // not a readable corpus: not a candidate
    }
  }
  return null;
}

/** Refuses to continue a run on a training split other than the one its checkpoint was saved over. */
export function checkTrainSplit(run: string, corpus: string, now: SplitPrint, was: SplitPrint, step: number): void {
  if (samePrint(now, was)) return;
  const kept = keptCorpusFor(run, was);
  throw new RunError(
    `the training split of ${corpus} has changed since this run's checkpoint at step ${step} ` +
      `(${was.files} files, ${was.samples} samples then; ${now.files} files, ${now.samples} samples now): ` +
      'a run continues only on the audio it started with. Either start over on the current audio: pass ' +
      `${restartHint(run)}; or finish this run on its original audio` +
      (kept
        ? `, kept in ${kept}: train on it with \`ctspeech train ${kept} --run ${run}\` (same options).`
        : ': point train at a corpus prepared from the audio it started with.'),
  );
}

/** One training step's window, and a warning when the whole training split is shorter. */
export function shortSplitWarning(
  corpus: string,
  samples: number,
  windows: TrainingWindows,
  batch: number,
): string | null {
  const [size, what] =
    windows.kind === 'streams'
      ? [batch * windows.segment, `${batch} rows x segment ${windows.segment}`]
      : [
          windows.receptiveField + windows.targets,
          `receptive field ${windows.receptiveField} + ${windows.targets} targets`,
        ];
  if (samples >= size) return null;
  return (
    `warning: the train split of ${corpus} holds ${samples} samples, shorter than one training window ` +
    `(${what} = ${size} samples): every step sees the same audio, padded with silence. Add training audio` +
    `${windows.kind === 'streams' ? ' or lower --batch' : ''}.`
  );
}

/**
 * The valid split's files, each cut to a window from its middle so that together they hold at most
 * `cap` samples (file starts are mostly silence and would flatter the model).
 */
export function validationSet(corpus: string, cap: number): { path: string; codes: Uint8Array }[] {
  const m = readManifest(corpus);
  const files = filesOf(m, 'valid');
  if (!files.length) return [];
  const fd = fs.openSync(path.join(corpus, m.binaries.valid), 'r');
  try {
    const per = Math.max(2, Math.floor(cap / files.length));
    return files.map((f) => {
      const n = Math.min(f.length, per);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, f.offset + Math.floor((f.length - n) / 2));
      return { path: f.path, codes: new Uint8Array(buf) };
    });
  } finally {
    fs.closeSync(fd);
  }
}
