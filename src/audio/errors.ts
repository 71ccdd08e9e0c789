/** A file that cannot be decoded: carries the path so a folder-level report can name it. */
import { UserError } from '../util/errors.js';
export class AudioDecodeError extends UserError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}
