/**
 * Row scheduling for batched inference over files: B rows, each reading one file after another,
 * n positions per call. A row whose file ran out takes the next file and is reset (the file starts
 * from empty state); rows with no file left are padded and never read. Evaluation and the
 * attention analysis both run on this.
 */
import { SILENCE_CODE } from '../util/codes.js';

/** One row's share of a call: positions from..from+count-1 of file `file`. */
export interface Placement {
  row: number;
  file: number;
  from: number;
  count: number;
  /** the row started this file with this call (its state was reset) */
  fresh: boolean;
}

export interface RowCall {
  /** [B * n] input codes, row-major; padding is the silence code */
  tokens: Int32Array;
  /** reset[b] = 1: row b starts a file with this call */
  reset: Uint8Array;
  placed: Placement[];
}

export interface FileRowsOptions {
  /** the order files are taken in (default: as given) */
  order?: number[];
  /**
   * only whole calls of n positions: a file's tail shorter than n is left out, and files shorter
   * than n are skipped (default false: the last call of a file may be partial)
   */
  whole?: boolean;
}

export class FileRows {
  private rows: ({ file: number; pos: number } | null)[];
  private readonly order: number[];
  private nextFile = 0;
  private tokens: Int32Array;
  private reset: Uint8Array;

  get batch(): number {
    return this.rows.length;
  }

  /** `inputs[f]` holds at least `lengths[f]` codes: the positions fed for file f. */
  constructor(
    private readonly inputs: readonly Uint8Array[],
    private readonly lengths: readonly number[],
    batch: number,
    readonly length: number,
    private readonly opts: FileRowsOptions = {},
  ) {
    this.order = opts.order ?? inputs.map((_, i) => i);
    this.rows = Array.from({ length: batch }, () => null);
    this.tokens = new Int32Array(batch * length);
    this.reset = new Uint8Array(batch);
  }

  private hasMore(r: { file: number; pos: number }): boolean {
    const len = this.lengths[r.file];
    return this.opts.whole ? r.pos + this.length <= len : r.pos < len;
  }

  private take(): { file: number; pos: number } | null {
    const { order, lengths } = this;
    while (this.opts.whole && this.nextFile < order.length && lengths[order[this.nextFile]] < this.length)
      this.nextFile++;
    return this.nextFile < order.length ? { file: order[this.nextFile++], pos: 0 } : null;
  }

  /**
   * Rows still reading a file once no file is left to take; null while files are left (rows that
   * run out will take them). Below the batch, the rest of the work fits a smaller batch.
   */
  liveRows(): number[] | null {
    if (this.nextFile < this.order.length) return null;
    return this.rows.flatMap((r, b) => (r && this.hasMore(r) ? [b] : []));
  }

  /**
   * Continue with `batch` rows: row i of the new batch is row `keep[i]` of the old (its file and
   * position), the rest empty. The caller moves the rows' model state the same way.
   */
  shrink(batch: number, keep: readonly number[]): void {
    if (keep.length > batch) throw new Error(`shrink: ${keep.length} rows do not fit a batch of ${batch}`);
    this.rows = Array.from({ length: batch }, (_, i) => (i < keep.length ? this.rows[keep[i]] : null));
    this.tokens = new Int32Array(batch * this.length);
    this.reset = new Uint8Array(batch);
  }

  /** The next call's tokens, resets and placements; null when every file has been fed. */
  next(): RowCall | null {
    const { batch: B, length: n, rows, tokens, reset } = this;
    reset.fill(0);
    for (let b = 0; b < B; b++) {
      const r = rows[b];
      if (r && this.hasMore(r)) continue;
      rows[b] = this.take();
      reset[b] = rows[b] ? 1 : 0;
    }
    if (rows.every((r) => r === null)) return null;
    const placed: Placement[] = [];
    for (let b = 0; b < B; b++) {
      const r = rows[b];
      tokens.fill(SILENCE_CODE, b * n, (b + 1) * n);
      if (!r) continue;
      const count = Math.min(n, this.lengths[r.file] - r.pos);
      tokens.set(this.inputs[r.file].subarray(r.pos, r.pos + count), b * n);
      placed.push({ row: b, file: r.file, from: r.pos, count, fresh: reset[b] === 1 });
      r.pos += count;
    }
    return { tokens, reset, placed };
  }
}
