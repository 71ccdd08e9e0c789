/** A file that cannot be decoded: carries the path so a folder-level report can name it. */
export class AudioDecodeError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
    this.name = 'AudioDecodeError';
  }
}
