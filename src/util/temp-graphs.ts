/**
 * Traced graphs that onnxruntime loads from a file (training steps, validation): written to the
 * temp folder, removed as soon as the session holds them. A process killed while its session was
 * being created leaves its file behind; the next one removes the files of writers no longer alive.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive } from './processes.js';

const PATTERN = /^ctspeech-(?:train|valid)-(\d+)-[0-9a-f]+\.onnx$/;

/** A fresh temp path for a `kind` graph of this process. */
export function tempGraphFile(kind: 'train' | 'valid', dir = os.tmpdir()): string {
  return path.join(dir, `ctspeech-${kind}-${process.pid}-${crypto.randomBytes(4).toString('hex')}.onnx`);
}

/** Removes graphs left by processes that are gone; returns their names. */
export function removeOrphanGraphs(dir = os.tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = PATTERN.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // another process removed it, or the folder is read-only: nothing to do
    }
  }
  return removed;
}
