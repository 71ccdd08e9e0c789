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
