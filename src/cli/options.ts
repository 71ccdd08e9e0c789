import { InvalidArgumentError } from 'commander';
import { UserError } from '../util/errors.js';
import { BACKENDS, type BackendName } from '../engine/backend.js';

/** Flag parsers whose errors say what was expected; commander adds the flag's name. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^[-+]?\d+$/.test(v.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    return n;
  };
}

export function floatArg(min: number, max: number, { exclusiveMax = false } = {}) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || (exclusiveMax ? n >= max : n > max))
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}${exclusiveMax ? ' (exclusive)' : ''}.`);
    return n;
  };
}

/** An error the user can fix: printed without a stack trace. */
export class UsageError extends UserError {}

/** --backend checked before any work: auto or one of the tfjs backends, named in the error. */
export function checkBackendFlag(backend: string): BackendName | 'auto' {
  const choices = ['auto', ...BACKENDS];
  if (!choices.includes(backend)) throw new UsageError(`--backend must be ${choices.join(', ')}, got ${backend}`);
  return backend as BackendName | 'auto';
}

/** Exit status of every user-fixable failure: a bad flag, file, config, or a full disk. */
export const USAGE_EXIT = 2;

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/**
 * "disk full while writing <file>" when `e`, or any error it wraps (cause, AggregateError), ran out
 * of space; null otherwise. The file is the first path any error of the chain names, without the
 * temp suffix of an atomic write, since that is the file the user knows.
 */
export function diskFullMessage(e: unknown): string | null {
  const chain: unknown[] = [e];
  let full = false;
  let file: string | undefined;
  for (let k = 0; k < chain.length && k < 32; k++) {
    const x = chain[k];
    if (!x || typeof x !== 'object') continue;
    const err = x as NodeJS.ErrnoException & { cause?: unknown; errors?: unknown };
    if (typeof err.code === 'string' && DISK_FULL.has(err.code)) full = true;
    if (file === undefined && typeof err.path === 'string') file = err.path.replace(/\.tmp-\d+$/, '');
    if (err.cause !== undefined && !chain.includes(err.cause)) chain.push(err.cause);
    if (Array.isArray(err.errors)) chain.push(...err.errors.filter((c) => !chain.includes(c)));
  }
  return full ? `disk full while writing${file ? ` ${file}` : ''}: free space and rerun` : null;
}

/** What the command line prints for an error that ends a command, and its exit status. */
export function failureOf(e: unknown): { message: string; exitCode: number } {
  const full = diskFullMessage(e);
  // A UserError already says what failed and what is safe: keep its words, and add the disk-full
  // cause only when they do not mention it.
  if (e instanceof UserError) {
    const said = /disk full|no space/i.test(e.message);
    return { message: full && !said ? `${e.message} (${full})` : e.message, exitCode: e.exitCode };
  }
  if (full) return { message: full, exitCode: USAGE_EXIT };
  // RangeError: library functions reject out-of-range arguments with it, naming the argument.
  if (e instanceof RangeError) return { message: e.message, exitCode: USAGE_EXIT };
  return { message: e instanceof Error ? (e.stack ?? e.message) : String(e), exitCode: 1 };
}
