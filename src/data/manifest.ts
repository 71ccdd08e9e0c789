import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

export const MANIFEST_FORMAT = 'ctspeech-corpus';
export const MANIFEST_VERSION = 1;
export const SPLITS = ['train', 'valid', 'test'] as const;
export type Split = (typeof SPLITS)[number];

const FileEntry = z.object({
  /** display path: input root's basename + path inside it */
  path: z.string(),
  /** absolute source path: the key for incremental re-prepare */
  source: z.string(),
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  split: z.enum(SPLITS),
  /** how the split was chosen: a train/valid/test folder, or the hash of `path` */
  splitBy: z.enum(['folder', 'hash']),
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
  sourceRate: z.number().nullable(),
  channels: z.number().int().positive(),
  decoder: z.enum(['wav', 'ffmpeg']),
  /** samples cut by silence trimming, at the corpus rate */
  trimmed: z.object({ start: z.number().int(), end: z.number().int() }),
});
export type FileEntry = z.infer<typeof FileEntry>;

const Settings = z.object({
  sampleRate: z.number().int().positive(),
  mu: z.literal(255),
  validFraction: z.number().min(0).max(1),
  testFraction: z.number().min(0).max(1),
  /** leading/trailing silence below this level (dBFS) is cut; null = no trimming */
  trimDb: z.number().nullable(),
});
export type CorpusSettings = z.infer<typeof Settings>;

export const Manifest = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(MANIFEST_VERSION),
  createdAt: z.string(),
  settings: Settings,
  /** one uint8 binary of codes per split, file names relative to the corpus dir */
  binaries: z.object({ train: z.string(), valid: z.string(), test: z.string() }),
  files: z.array(FileEntry),
  skipped: z.array(z.object({ source: z.string(), reason: z.string() })),
});
export type Manifest = z.infer<typeof Manifest>;

export function manifestPath(corpusDir: string): string {
  return path.join(corpusDir, 'manifest.json');
}

export class CorpusError extends UserError {}

/** Read and validate a corpus manifest; every failure names the corpus. */
export function readManifest(corpusDir: string): Manifest {
  const p = manifestPath(corpusDir);
  let raw: string;
  try {
    raw = fs.readFileSync(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CorpusError(
      code === 'ENOENT'
        ? `${corpusDir} is not a prepared corpus (no manifest.json); run \`ctspeech prepare\` first`
        : `cannot read ${p}: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new CorpusError(`${p} is not valid JSON: ${(e as Error).message}`);
  }
  const head = json as { format?: unknown; version?: unknown };
  if (head?.format !== MANIFEST_FORMAT) throw new CorpusError(`${p} is not a ctspeech corpus manifest`);
  if (head.version !== MANIFEST_VERSION)
    throw new CorpusError(
      `${p} has corpus format version ${String(head.version)}; ` +
        `this ctspeech reads version ${MANIFEST_VERSION} (re-run prepare)`,
    );
  const parsed = Manifest.safeParse(json);
  if (!parsed.success)
    throw new CorpusError(
      `${p} is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

export function writeManifest(corpusDir: string, m: Manifest): void {
  writeFileAtomic(manifestPath(corpusDir), JSON.stringify(m, null, 1) + '\n');
}

export function filesOf(m: Manifest, split: Split): FileEntry[] {
  return m.files.filter((f) => f.split === split).sort((a, b) => a.offset - b.offset);
}

/** What the batch streams need to read one split. */
export function splitSource(
  corpusDir: string,
  m: Manifest,
  split: Split,
): { path: string; files: { offset: number; length: number }[] } {
  return {
    path: path.join(corpusDir, m.binaries[split]),
    files: filesOf(m, split).map((f) => ({ offset: f.offset, length: f.length })),
  };
}

/** A file descriptor on a split's code binary; a binary that cannot be opened is a damaged corpus. */
export function openSplitBinary(corpusDir: string, m: Manifest, split: Split): number {
  try {
    return fs.openSync(path.join(corpusDir, m.binaries[split]), 'r');
  } catch (e) {
    throw new CorpusError(
      `corpus ${corpusDir} is damaged: ${m.binaries[split]} cannot be opened (${(e as NodeJS.ErrnoException).code}); ` +
        're-run prepare with --force',
    );
  }
}
