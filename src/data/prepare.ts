import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MU } from '../audio/mulaw.js';
import type { DecodeJob, DecodeResult } from './decode-worker.js';
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
import { InputError, type ScannedFile, scanInputs } from './scan.js';
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
  /** why the previous corpus could not be reused, if it could not */
  rebuiltBecause: string | null;
}

/**
 * Turn folders of audio into a corpus: one uint8 code binary per split plus manifest.json.
 * The manifest rename is the commit point: binaries of a new generation are written under
 * fresh names first, so a crash or Ctrl-C leaves the previous corpus intact.
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
  const out = path.resolve(opts.out);
  ensureOutDir(opts.out, out);

  const scan = scanInputs(opts.inputs, settings);
  const { previous, rebuiltBecause } = loadPrevious(out, settings, opts.force ?? false);
  const reusable = new Map<string, FileEntry>();
  for (const f of previous?.files ?? []) reusable.set(f.source, f);

  const gen = `${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
  const binaries = { train: `codes-train-${gen}.u8`, valid: `codes-valid-${gen}.u8`, test: `codes-test-${gen}.u8` };
  const writers = Object.fromEntries(SPLITS.map((s) => [s, new BinaryWriter(path.join(out, binaries[s]))])) as Record<
    Split,
    BinaryWriter
  >;
  const oldReaders = new Map<string, number>();

  const jobs = scan.files.map((f) => {
    const old = reusable.get(f.source);
    return old && old.size === f.size && old.mtimeMs === f.mtimeMs ? { f, old } : { f, old: null };
  });
  const toDecode = jobs.filter((j) => !j.old).length;
  const pool = toDecode
    ? new DecodePool(Math.max(1, Math.min(opts.workers ?? os.availableParallelism(), toDecode)))
    : null;
  // A bounded window of decodes in flight keeps workers busy while results are written in order.
  const window = Math.max(4, 4 * (opts.workers ?? os.availableParallelism()));
  const pending = new Map<number, Promise<DecodeResult>>();
  let next = 0;
  const launch = () => {
    while (pool && next < jobs.length && pending.size < window) {
      const j = jobs[next];
      if (!j.old)
        pending.set(
          next,
          pool.run({
            id: next,
            source: j.f.source,
            sampleRate: settings.sampleRate,
            trimDb: settings.trimDb,
          } satisfies DecodeJob),
        );
      next++;
    }
  };

  const entries: FileEntry[] = [];
  const skipped = [...scan.skipped];
  let decoded = 0;
  let reused = 0;
  let audioSamples = 0;
  try {
    for (let i = 0; i < jobs.length; i++) {
      launch();
      const { f, old } = jobs[i];
      let codes: Uint8Array;
      let meta: Omit<FileEntry, 'path' | 'source' | 'size' | 'mtimeMs' | 'split' | 'splitBy' | 'offset' | 'length'>;
      if (old) {
        codes = readOldCodes(out, previous!, old, oldReaders);
        meta = { sourceRate: old.sourceRate, channels: old.channels, decoder: old.decoder, trimmed: old.trimmed };
        reused++;
      } else {
        const r = await pending.get(i)!;
        pending.delete(i);
        if (!r.ok) {
          skipped.push({ source: f.source, reason: r.reason });
          opts.onProgress?.({
            done: i + 1,
            total: jobs.length,
            file: f.display,
            audioSeconds: audioSamples / settings.sampleRate,
          });
          continue;
        }
        codes = r.codes;
        meta = { sourceRate: r.sourceRate, channels: r.channels, decoder: r.decoder, trimmed: r.trimmed };
        decoded++;
      }
      const w = writers[f.split];
      entries.push(entryOf(f, w.offset, codes.length, meta));
      w.write(codes);
      audioSamples += codes.length;
      opts.onProgress?.({
        done: i + 1,
        total: jobs.length,
        file: f.display,
        audioSeconds: audioSamples / settings.sampleRate,
      });
    }
    for (const w of Object.values(writers)) w.finish();
  } catch (e) {
    for (const w of Object.values(writers)) w.abandon();
    throw e;
  } finally {
    for (const fd of oldReaders.values()) fs.closeSync(fd);
    await pool?.close();
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    createdAt: new Date().toISOString(),
    settings,
    binaries,
    files: entries,
    skipped,
  };
  writeManifest(out, manifest);
  removeStaleBinaries(out, binaries);
  const current = new Set(scan.files.map((f) => f.source));
  const removed = (previous?.files ?? []).filter((f) => !current.has(f.source)).length;
  return { corpusDir: out, manifest, decoded, reused, removed, ignored: scan.ignored, skipped, rebuiltBecause };
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

function ensureOutDir(given: string, out: string): void {
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory())
    throw new InputError(`output ${given} exists and is not a folder`);
  try {
    fs.mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new InputError(`cannot create output folder ${given}: ${(e as Error).message}`);
  }
}

function loadPrevious(
  out: string,
  s: CorpusSettings,
  force: boolean,
): { previous: Manifest | null; rebuiltBecause: string | null } {
  if (!fs.existsSync(manifestPath(out))) return { previous: null, rebuiltBecause: null };
  let m: Manifest;
  try {
    m = readManifest(out);
  } catch (e) {
    if (e instanceof CorpusError)
      return { previous: null, rebuiltBecause: `previous manifest unreadable (${e.message})` };
    throw e;
  }
  if (force) return { previous: null, rebuiltBecause: '--force' };
  const p = m.settings;
  if (p.sampleRate !== s.sampleRate)
    return { previous: null, rebuiltBecause: `sample rate changed (${p.sampleRate} -> ${s.sampleRate} Hz)` };
  if (p.trimDb !== s.trimDb)
    return { previous: null, rebuiltBecause: `trim threshold changed (${p.trimDb} -> ${s.trimDb})` };
  for (const split of SPLITS) {
    const bin = path.join(out, m.binaries[split]);
    const need = m.files.filter((f) => f.split === split).reduce((a, f) => Math.max(a, f.offset + f.length), 0);
    if (!fs.existsSync(bin) || fs.statSync(bin).size < need)
      return { previous: null, rebuiltBecause: `previous ${m.binaries[split]} is missing or truncated` };
  }
  return { previous: m, rebuiltBecause: null };
}

function readOldCodes(out: string, m: Manifest, e: FileEntry, fds: Map<string, number>): Uint8Array {
  const name = m.binaries[e.split];
  let fd = fds.get(name);
  if (fd === undefined) {
    fd = fs.openSync(path.join(out, name), 'r');
    fds.set(name, fd);
  }
  const buf = Buffer.alloc(e.length);
  const got = fs.readSync(fd, buf, 0, e.length, e.offset);
  if (got !== e.length) throw new CorpusError(`${name} is shorter than its manifest says (file ${e.path})`);
  return buf;
}

function entryOf(
  f: ScannedFile,
  offset: number,
  length: number,
  meta: Pick<FileEntry, 'sourceRate' | 'channels' | 'decoder' | 'trimmed'>,
): FileEntry {
  return {
    path: f.display,
    source: f.source,
    size: f.size,
    mtimeMs: f.mtimeMs,
    split: f.split,
    splitBy: f.splitBy,
    offset,
    length,
    ...meta,
  };
}

/** Anything named like a code binary that the new manifest does not reference: old generations, crashed runs. */
function removeStaleBinaries(out: string, keep: Record<Split, string>): void {
  const live = new Set(Object.values(keep));
  for (const name of fs.readdirSync(out)) {
    if (/^codes-(train|valid|test)-.*\.u8(\.tmp)?$/.test(name) && !live.has(name))
      fs.rmSync(path.join(out, name), { force: true });
  }
}

/** Appends to a split binary; fsyncs before the manifest that points at it is written. */
class BinaryWriter {
  private fd: number;
  offset = 0;
  constructor(private readonly file: string) {
    this.fd = fs.openSync(file, 'w');
  }
  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
    this.offset += bytes.length;
  }
  finish(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
  abandon(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(this.file, { force: true });
  }
}
