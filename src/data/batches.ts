/**
 * Training batch streams over one split binary (uint8 mu-law codes, files concatenated).
 *
 * SegmentStream feeds the segment-recurrent models (Transformer-XL / Compressive Transformer):
 * B rows each walk a contiguous share of the split, one segment per step, so a row's memory
 * carries over between consecutive segments of the same file.
 * CropStream feeds WaveNet: independent random crops, one file each.
 *
 * Both read with positional reads so a multi-GB split is never resident, and both expose a
 * JSON-serializable state() that a checkpoint stores to resume the exact batch sequence.
 */
import fs from 'node:fs';
import { SILENCE_CODE } from '../audio/mulaw.js';
import { Rng, type RngState } from './rng.js';
import { UserError } from '../util/errors.js';

/** Mu-law code of silence: the input used for padding. */

export interface SplitSource {
  /** path of the split's .u8 binary */
  path: string;
  /** files in order of offset: offset and length in bytes (= samples) */
  files: { offset: number; length: number }[];
}

/** A configuration the data cannot satisfy (bad flag value, empty split, foreign state). */
export class BatchConfigError extends UserError {}

function positiveInt(flag: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new BatchConfigError(`${flag} must be a positive integer, got ${v}`);
  return v;
}

/**
 * The split's non-empty files laid end to end in "logical" sample positions [0, total), mapped
 * to byte offsets in the binary. Empty files are dropped: they hold no sample to land on.
 */
class SplitReader {
  readonly starts: number[] = [];
  readonly lengths: number[] = [];
  private readonly offsets: number[] = [];
  readonly total: number;
  private fd: number | null = null;

  constructor(
    readonly path: string,
    files: { offset: number; length: number }[],
    keep: (length: number) => boolean,
  ) {
    let total = 0;
    for (const [i, f] of files.entries()) {
      if (!Number.isSafeInteger(f.offset) || f.offset < 0 || !Number.isSafeInteger(f.length) || f.length < 0) {
        throw new BatchConfigError(`${path}: file ${i} has invalid offset/length ${f.offset}/${f.length}`);
      }
      if (!keep(f.length)) continue;
      this.starts.push(total);
      this.lengths.push(f.length);
      this.offsets.push(f.offset);
      total += f.length;
    }
    this.total = total;
  }

  /** Opened separately so that configuration errors are raised before touching the disk. */
  open(): void {
    const fd = fs.openSync(this.path, 'r');
    const size = fs.fstatSync(fd).size;
    const end = this.offsets.reduce((m, o, i) => Math.max(m, o + this.lengths[i]), 0);
    if (end > size) {
      fs.closeSync(fd);
      throw new BatchConfigError(`${this.path} holds ${size} bytes but its manifest addresses up to byte ${end}`);
    }
    this.fd = fd;
  }

  /** Index of the file holding logical position pos (0 <= pos < total). */
  fileAt(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  fileEnd(f: number): number {
    return this.starts[f] + this.lengths[f];
  }

  /** Reads n codes of file f starting at sample `within` of that file into buf[at..at+n). */
  read(f: number, within: number, buf: Uint8Array, at: number, n: number): void {
    if (this.fd === null) throw new Error(`${this.path}: stream is closed`);
    let done = 0;
    while (done < n) {
      const got = fs.readSync(this.fd, buf, at + done, n - done, this.offsets[f] + within + done);
      if (got === 0) throw new Error(`${this.path}: unexpected end of file at byte ${this.offsets[f] + within + done}`);
      done += got;
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

// ---------------------------------------------------------------------------------------------

export interface SegmentStreamOptions {
  batch: number;
  segment: number;
}

export interface SegmentRowState {
  /** logical position (over the split's non-empty files) of the row's next segment input */
  pos: number;
  /** completed passes over the row's share */
  epoch: number;
  /** the next segment starts a new memory context (new file, share start or epoch wrap) */
  fresh: boolean;
}

export interface SegmentStreamState {
  kind: 'segment';
  batch: number;
  /** split length, to refuse a state saved against a different corpus */
  total: number;
  rows: SegmentRowState[];
}

export interface SegmentBatch {
  /** [B*n_s] row-major */
  inputs: Int32Array;
  targets: Int32Array;
  /** 1 where target valid */
  mask: Float32Array;
  /** [B] 1 where the row's memory must be cleared before this segment */
  reset: Uint8Array;
  /** completed passes of the slowest row when this batch was drawn */
  epoch: number;
  /** count of mask == 1 */
  tokens: number;
}

export class SegmentStream {
  private readonly reader: SplitReader;
  private readonly B: number;
  private readonly n: number;
  private readonly shareStart: number[] = [];
  private readonly shareEnd: number[] = [];
  private readonly rows: SegmentRowState[];
  private readonly buf: Uint8Array;

  constructor(src: SplitSource, opts: SegmentStreamOptions, state?: SegmentStreamState) {
    const B = positiveInt('batch', opts.batch);
    this.n = positiveInt('segment', opts.segment);
    this.B = B;
    const reader = new SplitReader(src.path, src.files, (len) => len > 0);
    const T = reader.total;
    if (T < 2) throw new BatchConfigError(`split ${src.path} is empty (${T} samples): nothing to stream`);
    if (T < 2 * B)
      throw new BatchConfigError(
        `batch=${B} is too large for split ${src.path}: ${T} samples leave fewer than 2 per row; lower batch`,
      );
    for (let b = 0; b < B; b++) {
      this.shareStart.push(Math.floor((b * T) / B));
      this.shareEnd.push(Math.floor(((b + 1) * T) / B));
    }
    if (!reader.lengths.some((len) => len >= 2)) {
      throw new BatchConfigError(
        `split ${src.path} has no file with 2 or more samples: no (input, target) pair to stream`,
      );
    }
    for (let b = 0; b < B; b++) {
      // A row without a single in-file pair would never yield a token (and normalize() would spin).
      if (this.pairsInShare(reader, b) === 0) {
        throw new BatchConfigError(
          `batch=${B} is too large for split ${src.path}: ` +
            `row ${b}'s share holds no two consecutive samples of one file; lower batch`,
        );
      }
    }
    this.rows = state
      ? this.restore(state, T, src.path)
      : this.shareStart.map((pos) => ({ pos, epoch: 0, fresh: true }));
    this.buf = new Uint8Array(this.n + 1);
    reader.open();
    this.reader = reader;
    for (let b = 0; b < B; b++) this.normalize(b);
  }

  private pairsInShare(r: SplitReader, b: number): number {
    const s = this.shareStart[b];
    const e = this.shareEnd[b];
    let pairs = 0;
    for (let f = r.fileAt(s); f < r.starts.length && r.starts[f] < e; f++) {
      pairs += Math.max(0, Math.min(e, r.fileEnd(f)) - Math.max(s, r.starts[f]) - 1);
    }
    return pairs;
  }

  private restore(st: SegmentStreamState, T: number, path: string): SegmentRowState[] {
    if (st?.kind !== 'segment')
      throw new BatchConfigError(`not a SegmentStream state: ${JSON.stringify(st)?.slice(0, 80)}`);
    if (st.batch !== this.B)
      throw new BatchConfigError(`resume state was saved with batch=${st.batch}, but batch=${this.B} was given`);
    if (st.total !== T)
      throw new BatchConfigError(`resume state was saved for a split of ${st.total} samples, but ${path} has ${T}`);
    if (!Array.isArray(st.rows) || st.rows.length !== this.B)
      throw new BatchConfigError(`resume state has ${st.rows?.length} rows, expected ${this.B}`);
    return st.rows.map((r, b) => {
      const ok =
        Number.isSafeInteger(r.pos) &&
        r.pos >= this.shareStart[b] &&
        r.pos <= this.shareEnd[b] &&
        Number.isSafeInteger(r.epoch) &&
        r.epoch >= 0 &&
        typeof r.fresh === 'boolean';
      if (!ok) throw new BatchConfigError(`resume state row ${b} is invalid: ${JSON.stringify(r)}`);
      return { pos: r.pos, epoch: r.epoch, fresh: r.fresh };
    });
  }

  /** Moves row b to a position that starts at least one in-file pair, wrapping at share end. */
  private normalize(b: number): void {
    const r = this.rows[b];
    for (;;) {
      if (r.pos >= this.shareEnd[b]) {
        r.pos = this.shareStart[b];
        r.epoch++;
        r.fresh = true;
      }
      const limit = Math.min(this.reader.fileEnd(this.reader.fileAt(r.pos)), this.shareEnd[b]);
      if (limit - r.pos >= 2) return;
      // The file's (or share's) last sample has no target inside it: skip to the next file.
      r.pos = limit;
      r.fresh = true;
    }
  }

  next(): SegmentBatch {
    const { B, n, reader, buf } = this;
    const inputs = new Int32Array(B * n).fill(SILENCE_CODE);
    const targets = new Int32Array(B * n);
    const mask = new Float32Array(B * n);
    const reset = new Uint8Array(B);
    let epoch = Infinity;
    let tokens = 0;
    for (let b = 0; b < B; b++) {
      const r = this.rows[b];
      epoch = Math.min(epoch, r.epoch);
      const f = reader.fileAt(r.pos);
      const limit = Math.min(reader.fileEnd(f), this.shareEnd[b]);
      const k = Math.min(n, limit - 1 - r.pos);
      reader.read(f, r.pos - reader.starts[f], buf, 0, k + 1);
      const o = b * n;
      for (let t = 0; t < k; t++) {
        inputs[o + t] = buf[t];
        targets[o + t] = buf[t + 1];
        mask[o + t] = 1;
      }
      tokens += k;
      reset[b] = r.fresh ? 1 : 0;
      r.pos += k;
      r.fresh = false;
      this.normalize(b);
    }
    return { inputs, targets, mask, reset, epoch, tokens };
  }

  state(): SegmentStreamState {
    return { kind: 'segment', batch: this.B, total: this.reader.total, rows: this.rows.map((r) => ({ ...r })) };
  }

  close(): void {
    this.reader.close();
  }
}

// ---------------------------------------------------------------------------------------------

export interface CropStreamOptions {
  batch: number;
  /**
   * R: samples one prediction sees, counting the current input. The prediction at input index i
   * (target = crop[i+1]) sees inputs crop[i-R+1 .. i], so it lies inside the crop iff i >= R-1.
   */
  receptiveField: number;
  /** n_t: masked-in targets per row */
  targetLength: number;
  /** integer seed; ignored when a state is given */
  seed: number;
}

export interface CropStreamState {
  kind: 'crop';
  /** summed length of eligible files, to refuse a state saved against a different corpus */
  total: number;
  rng: RngState;
}

export interface CropBatch {
  /** [B*(R+n_t-1)] row-major */
  inputs: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
  /** all ones: every crop starts from empty model state (see next()) */
  reset: Uint8Array;
  tokens: number;
}

export class CropStream {
  private readonly reader: SplitReader;
  private readonly B: number;
  private readonly R: number;
  private readonly nt: number;
  private readonly rng: Rng;
  private readonly crop: Uint8Array;

  constructor(src: SplitSource, opts: CropStreamOptions, state?: CropStreamState) {
    this.B = positiveInt('batch', opts.batch);
    this.R = positiveInt('receptiveField', opts.receptiveField);
    this.nt = positiveInt('targetLength', opts.targetLength);
    // A one-sample file has no (input, target) pair, so it must not be drawn.
    const reader = new SplitReader(src.path, src.files, (len) => len >= 2);
    if (reader.total === 0)
      throw new BatchConfigError(`split ${src.path} is empty: no file with 2 or more samples to crop`);
    if (state) {
      if (state?.kind !== 'crop')
        throw new BatchConfigError(`not a CropStream state: ${JSON.stringify(state)?.slice(0, 80)}`);
      if (state.total !== reader.total) {
        throw new BatchConfigError(
          `resume state was saved for ${state.total} eligible samples, but ${src.path} has ${reader.total}`,
        );
      }
      this.rng = new Rng(state.rng);
    } else {
      if (!Number.isSafeInteger(opts.seed)) throw new BatchConfigError(`seed must be an integer, got ${opts.seed}`);
      this.rng = new Rng(opts.seed);
    }
    this.crop = new Uint8Array(this.R + this.nt);
    reader.open();
    this.reader = reader;
  }

  /**
   * Each row scores n_t consecutive targets, their first index u uniform over the file (a file is
   * drawn in proportion to its length). Inputs reach back R-1 samples before u, or to the file's
   * first sample when u lies closer to it: such a row starts at the file start and the model meets
   * it with empty state, exactly as evaluation scores a file from empty state. So every sample of a
   * file is trained with the context it is scored with. A file shorter than the crop is padded with
   * silence after its end (masked; causality keeps it from touching earlier positions).
   */
  next(): CropBatch {
    const { B, R, nt, reader, rng, crop } = this;
    const C = R + nt;
    const w = C - 1;
    const inputs = new Int32Array(B * w);
    const targets = new Int32Array(B * w);
    const mask = new Float32Array(B * w);
    let tokens = 0;
    for (let b = 0; b < B; b++) {
      const f = reader.fileAt(rng.nextInt(reader.total));
      const L = reader.lengths[f];
      // Targets u .. last, file indices; a file's first sample is never a target.
      const u = 1 + rng.nextInt(Math.max(1, L - nt));
      const last = Math.min(u + nt - 1, L - 1);
      const a = Math.max(0, u - R);
      const n = Math.min(C, L - a);
      reader.read(f, a, crop, 0, n);
      crop.fill(SILENCE_CODE, n, C);
      const o = b * w;
      for (let i = 0; i < w; i++) {
        inputs[o + i] = crop[i];
        targets[o + i] = crop[i + 1];
      }
      for (let t = u; t <= last; t++) mask[o + t - 1 - a] = 1;
      tokens += last - u + 1;
    }
    return { inputs, targets, mask, reset: new Uint8Array(B).fill(1), tokens };
  }

  state(): CropStreamState {
    return { kind: 'crop', total: this.reader.total, rng: this.rng.state() };
  }

  close(): void {
    this.reader.close();
  }
}
