import path from 'node:path';

/** `to` relative to the folder `from`, with '/' separators: how run files and reports name each other. */
export function posixRelative(from: string, to: string): string {
  return path.relative(path.resolve(from), path.resolve(to)).split(path.sep).join('/');
}
