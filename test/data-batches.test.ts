import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CropStream, SegmentStream, type SegmentBatch, type SplitSource } from '../src/data/batches.js';
import { Rng } from '../src/data/rng.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-batches-'));
let splitNo = 0;

/** Writes files end to end into one binary, as the corpus writer does. */
function writeSplit(files: Uint8Array[]): SplitSource {
  const p = path.join(dir, `split${splitNo++}.u8`);
  fs.writeFileSync(p, Buffer.concat(files));
  let offset = 0;
  const entries = files.map((f) => {
    const e = { offset, length: f.length };
    offset += f.length;
    return e;
  });
  return { path: p, files: entries };
}

/** Deterministic test-side bytes, independent of the Rng under test. */
function lcgBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

interface Seg {
  inp: number[];
  tgt: number[];
  reset: number;
}

/**
 * Brute-force spec: row b's share is [floor(bT/B), floor((b+1)T/B)); inside it, each file's run
 * of consecutive in-file pairs is cut into chunks of n_s, the first chunk of a run resetting memory.
 */
function expectedSegments(files: Uint8Array[], B: number, ns: number): Seg[][] {
  const flat: { v: number; file: number }[] = [];
  files.forEach((f, k) => f.forEach((v) => flat.push({ v, file: k })));
  const T = flat.length;
  const rows: Seg[][] = [];
  for (let b = 0; b < B; b++) {
    const s = Math.floor((b * T) / B);
    const e = Math.floor(((b + 1) * T) / B);
    const runs: [number, number][][] = [];
    let run: [number, number][] = [];
    for (let x = s; x + 1 < e; x++) {
      if (flat[x].file === flat[x + 1].file) run.push([flat[x].v, flat[x + 1].v]);
      else if (run.length) {
        runs.push(run);
        run = [];
      }
    }
    if (run.length) runs.push(run);
    const segs: Seg[] = [];
    for (const r of runs) {
      for (let i = 0; i < r.length; i += ns) {
        const chunk = r.slice(i, i + ns);
        segs.push({ inp: chunk.map((p) => p[0]), tgt: chunk.map((p) => p[1]), reset: i === 0 ? 1 : 0 });
      }
    }
    rows.push(segs);
  }
  return rows;
}

/** Row b of a batch as a Seg, checking the padding convention on the way. */
function rowOf(batch: SegmentBatch, b: number, ns: number): Seg {
  const seg: Seg = { inp: [], tgt: [], reset: batch.reset[b] };
  for (let t = 0; t < ns; t++) {
    const i = b * ns + t;
    if (batch.mask[i] === 1) {
      assert.equal(seg.inp.length, t, 'valid positions form a prefix of the segment');
      seg.inp.push(batch.inputs[i]);
      seg.tgt.push(batch.targets[i]);
    } else {
      assert.equal(batch.mask[i], 0);
      assert.equal(batch.inputs[i], 128, 'padding input is mu-law silence');
      assert.equal(batch.targets[i], 0, 'padding target is 0');
    }
  }
  return seg;
}

function checkAgainstSpec(files: Uint8Array[], B: number, ns: number): void {
  const want = expectedSegments(files, B, ns);
  const src = writeSplit(files);
  const T = files.reduce((a, f) => a + f.length, 0);
  if (T < 2) {
    assert.throws(
      () => new SegmentStream(src, { batch: B, segment: ns }),
      (e: Error) => e.message.includes(src.path),
    );
    return;
  }
  if (want.every((r) => r.length === 0)) {
    assert.throws(
      () => new SegmentStream(src, { batch: B, segment: ns }),
      (e: Error) => e.message.includes(src.path),
    );
    return;
  }
  if (want.some((r) => r.length === 0)) {
    assert.throws(() => new SegmentStream(src, { batch: B, segment: ns }), /batch/);
    return;
  }
  const stream = new SegmentStream(src, { batch: B, segment: ns });
  const maxLen = Math.max(...want.map((r) => r.length));
  // Two full cycles of the longest row: covers every row's first epoch and its wrap.
  for (let step = 0; step < 2 * maxLen + 1; step++) {
    const batch = stream.next();
    let tokens = 0;
    for (let b = 0; b < B; b++) {
      const got = rowOf(batch, b, ns);
      const exp = want[b][step % want[b].length];
      // An epoch wrap always resets, even if the share starts mid-file.
      const expReset = step % want[b].length === 0 ? 1 : exp.reset;
      assert.deepEqual(
        got,
        { ...exp, reset: expReset },
        `files=${files.map((f) => f.length)} B=${B} ns=${ns} step=${step} row=${b}`,
      );
      tokens += got.inp.length;
    }
    assert.equal(batch.tokens, tokens);
    assert.equal(batch.epoch, Math.min(...want.map((r) => Math.floor(step / r.length))));
  }
  stream.close();
}

test('SegmentStream: one epoch reproduces every in-file pair of each share, in order', () => {
  const lens = [1, 7, 2, 0, 13, 5, 30, 3, 1, 9];
  const files = lens.map((n, k) => lcgBytes(n, k + 1));
  for (const B of [1, 2, 3, 5, 8]) for (const ns of [1, 2, 4, 7, 40]) checkAgainstSpec(files, B, ns);
});

test('SegmentStream: randomized layouts against the brute-force spec', () => {
  const r = new Rng(12345);
  for (let trial = 0; trial < 300; trial++) {
    const files = Array.from({ length: 1 + r.nextInt(8) }, (_, k) => lcgBytes(r.nextInt(25), trial * 100 + k));
    const T = files.reduce((a, f) => a + f.length, 0);
    const B = 1 + r.nextInt(6);
    if (T >= 2 && T < 2 * B) {
      assert.throws(() => new SegmentStream(writeSplit(files), { batch: B, segment: 3 }), /batch/);
      continue;
    }
    checkAgainstSpec(files, B, 1 + r.nextInt(9));
  }
});

test('SegmentStream: reset flags sit at file starts, share starts and epoch wraps', () => {
  // Two files of 10; B=2 shares [0,10) and [10,20), n_s=4: file = 9 pairs = segments of 4,4,1.
  // B=3 shares [0,6), [6,13), [13,20): row 1 starts mid-file 0 and crosses into file 1.
  const files = [lcgBytes(10, 1), lcgBytes(10, 2)];
  const src = writeSplit(files);
  const s2 = new SegmentStream(src, { batch: 2, segment: 4 });
  const r2 = Array.from({ length: 7 }, () => Array.from(s2.next().reset));
  assert.deepEqual(r2, [
    [1, 1],
    [0, 0],
    [0, 0],
    [1, 1],
    [0, 0],
    [0, 0],
    [1, 1],
  ]);
  s2.close();
  const s3 = new SegmentStream(src, { batch: 3, segment: 4 });
  const got = Array.from({ length: 4 }, () => s3.next());
  // Row 1: pairs 6..9 in file 0 (3 pairs: one segment), then file 1 positions 10..12 (2 pairs).
  assert.deepEqual(
    got.map((b) => b.reset[1]),
    [1, 1, 1, 1],
  );
  assert.deepEqual(Array.from(got[0].inputs.slice(4, 8)), [...files[0].slice(6, 9), 128]);
  assert.deepEqual(Array.from(got[1].inputs.slice(4, 8)), [...files[1].slice(0, 2), 128, 128]);
  assert.deepEqual(Array.from(got[2].inputs.slice(4, 8)), Array.from(got[0].inputs.slice(4, 8)));
  s3.close();
});

test('SegmentStream: resume from a JSON-round-tripped state equals an uninterrupted run', () => {
  const files = [5, 40, 3, 17, 60, 2, 33].map((n, k) => lcgBytes(n, 50 + k));
  const src = writeSplit(files);
  const opts = { batch: 3, segment: 6 };
  for (const k of [0, 1, 5, 13, 29]) {
    const a = new SegmentStream(src, opts);
    for (let i = 0; i < k; i++) a.next();
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = new SegmentStream(src, opts, saved);
    for (let i = 0; i < 40; i++) assert.deepEqual(b.next(), a.next(), `k=${k} i=${i}`);
    a.close();
    b.close();
  }
  const a = new SegmentStream(src, opts);
  assert.throws(() => new SegmentStream(src, { batch: 2, segment: 6 }, a.state()), /batch/);
  assert.throws(() => new SegmentStream(writeSplit(files.slice(1)), opts, a.state()), /samples/);
  a.close();
});

test('SegmentStream: bad input errors', () => {
  const src = writeSplit([lcgBytes(10, 1)]);
  assert.throws(() => new SegmentStream(src, { batch: 0, segment: 4 }), /batch/);
  assert.throws(() => new SegmentStream(src, { batch: 1.5, segment: 4 }), /batch/);
  assert.throws(() => new SegmentStream(src, { batch: 2, segment: 0 }), /segment/);
  assert.throws(() => new SegmentStream(src, { batch: 6, segment: 4 }), /batch=6/);
  const empty = writeSplit([new Uint8Array(0), new Uint8Array(1)]);
  assert.throws(
    () => new SegmentStream(empty, { batch: 1, segment: 4 }),
    (e: Error) => e.message.includes(empty.path),
  );
  const singles = writeSplit([lcgBytes(1, 1), lcgBytes(1, 2), lcgBytes(1, 3)]);
  assert.throws(
    () => new SegmentStream(singles, { batch: 1, segment: 4 }),
    (e: Error) => e.message.includes(singles.path),
  );
  const truncated = { path: src.path, files: [{ offset: 0, length: 11 }] };
  assert.throws(() => new SegmentStream(truncated, { batch: 1, segment: 4 }), /10 bytes/);
});

// ---------------------------------------------------------------------------------------------

/** File k holds values k*40 + (0..39), repeating: a crop's values name its file and offset. */
function rangedFiles(lens: number[]): Uint8Array[] {
  return lens.map((n, k) => Uint8Array.from({ length: n }, (_, i) => k * 40 + ((i * 7) % 40)));
}

function cropRows(batch: { inputs: Int32Array; targets: Int32Array }, w: number, B: number): number[][] {
  return Array.from({ length: B }, (_, b) => [...batch.inputs.slice(b * w, b * w + w), batch.targets[b * w + w - 1]]);
}

test(
  'CropStream: every crop is a consecutive run of one file; ' +
    'n_t targets scored, with their whole context or from the file start',
  () => {
    const lens = [300, 80, 1, 0, 500, 64];
    const files = rangedFiles(lens);
    const src = writeSplit(files);
    const R = 16;
    const nt = 48;
    const B = 8;
    const s = new CropStream(src, { batch: B, receptiveField: R, targetLength: nt, seed: 7 });
    const w = R + nt - 1;
    let fromStart = 0;
    for (let step = 0; step < 50; step++) {
      const batch = s.next();
      assert.equal(batch.inputs.length, B * w);
      assert.deepEqual(Array.from(batch.reset), new Array(B).fill(1), 'every crop starts from empty state');
      assert.equal(
        batch.tokens,
        batch.mask.reduce((a, m) => a + m, 0),
      );
      for (const [b, crop] of cropRows(batch, w, B).entries()) {
        for (let i = 0; i < w; i++)
          assert.equal(batch.targets[b * w + i], crop[i + 1], 'targets are inputs shifted by one');
        const k = Math.floor(crop[0] / 40);
        const f = Array.from(files[k]);
        const real = crop.slice(0, Math.min(crop.length, f.length));
        const at = f.findIndex((_, j) => j + real.length <= f.length && real.every((v, i) => f[j + i] === v));
        assert.ok(at >= 0, `crop ${crop.slice(0, 5)}... lies inside file ${k}`);
        const mask = Array.from(batch.mask.subarray(b * w, (b + 1) * w));
        const first = mask.indexOf(1);
        const count = mask.filter((m) => m === 1).length;
        assert.equal(count, Math.min(nt, f.length - 1), 'n_t targets (fewer only for a file shorter than that)');
        assert.ok(
          mask.slice(first, first + count).every((m) => m === 1),
          'scored targets are consecutive',
        );
        if (first < R - 1) {
          // Fewer than R-1 inputs before the first scored target: the crop must begin at the file
          // start, where empty state stands for the time before it, as in evaluation.
          assert.equal(at, 0, "a crop with short context starts at its file's first sample");
          fromStart++;
        } else {
          assert.equal(first, R - 1, 'otherwise the last n_t positions, each with its whole receptive field');
        }
      }
    }
    assert.ok(fromStart > 0, 'some crops start at a file start');
    s.close();
  },
);

test('CropStream: every target of a file is trained, its first samples included, and never its first sample', () => {
  const file = Uint8Array.from({ length: 100 }, (_, i) => i);
  const src = writeSplit([file]);
  const R = 16;
  const nt = 8;
  const s = new CropStream(src, { batch: 50, receptiveField: R, targetLength: nt, seed: 5 });
  const seen = new Array(100).fill(0);
  for (let step = 0; step < 40; step++) {
    const batch = s.next();
    batch.mask.forEach((m, i) => {
      if (m) seen[batch.targets[i]]++;
    });
  }
  assert.equal(seen[0], 0, 'the first sample has no predecessor');
  for (let t = 1; t < 100; t++) assert.ok(seen[t] > 0, `target ${t} is trained`);
  s.close();
});

test('CropStream: files are drawn in proportion to their length', () => {
  const lens = [100, 300, 600, 1];
  const src = writeSplit(rangedFiles(lens));
  const s = new CropStream(src, { batch: 100, receptiveField: 4, targetLength: 4, seed: 99 });
  const counts = [0, 0, 0, 0];
  for (let step = 0; step < 200; step++) {
    const batch = s.next();
    for (let b = 0; b < 100; b++) counts[Math.floor(batch.inputs[b * 7] / 40)]++;
  }
  assert.equal(counts[3], 0, 'a one-sample file is never drawn');
  const N = 20_000;
  const chi2 = [0.1, 0.3, 0.6].reduce((a, p, k) => a + (counts[k] - N * p) ** 2 / (N * p), 0);
  assert.ok(chi2 < 13.8, `chi-square ${chi2.toFixed(2)} (2 dof, p=0.001 critical 13.8), counts ${counts}`);
  s.close();
});

test('CropStream: a file shorter than the crop starts its row and is padded with silence after its end', () => {
  const file = Uint8Array.from([10, 11, 12, 13, 14]);
  const src = writeSplit([file]);
  const s = new CropStream(src, { batch: 2, receptiveField: 4, targetLength: 6, seed: 1 });
  const batch = s.next();
  // Crop of 10 = 5 samples + 5 silence; every (input, target) pair of real samples is scored.
  const row = {
    inputs: [10, 11, 12, 13, 14, 128, 128, 128, 128],
    targets: [11, 12, 13, 14, 128, 128, 128, 128, 128],
    mask: [1, 1, 1, 1, 0, 0, 0, 0, 0],
  };
  for (let b = 0; b < 2; b++) {
    assert.deepEqual(Array.from(batch.inputs.slice(b * 9, b * 9 + 9)), row.inputs);
    assert.deepEqual(Array.from(batch.targets.slice(b * 9, b * 9 + 9)), row.targets);
    assert.deepEqual(Array.from(batch.mask.slice(b * 9, b * 9 + 9)), row.mask);
  }
  assert.equal(batch.tokens, 8);
  s.close();
  // n_t = 2 of the 4 pairs: two consecutive targets, inputs from the file start.
  const s2 = new CropStream(src, { batch: 1, receptiveField: 4, targetLength: 2, seed: 1 });
  const b2 = s2.next();
  assert.deepEqual(Array.from(b2.inputs), [10, 11, 12, 13, 14]);
  const ones = Array.from(b2.mask).flatMap((m, i) => (m ? [i] : []));
  assert.equal(ones.length, 2);
  assert.equal(ones[1], ones[0] + 1);
  s2.close();
});

test('CropStream: seeded determinism, seeds differ, and resume equals an uninterrupted run', () => {
  const src = writeSplit([lcgBytes(400, 1), lcgBytes(50, 2), lcgBytes(900, 3)]);
  const opts = (seed: number) => ({ batch: 4, receptiveField: 8, targetLength: 24, seed });
  const run = (s: CropStream, n: number) => Array.from({ length: n }, () => s.next());
  const a = new CropStream(src, opts(42));
  const b = new CropStream(src, opts(42));
  const c = new CropStream(src, opts(43));
  const ra = run(a, 10);
  assert.deepEqual(run(b, 10), ra);
  assert.notDeepEqual(run(c, 10), ra);
  const saved = JSON.parse(JSON.stringify(a.state()));
  const resumed = new CropStream(src, opts(0), saved);
  assert.deepEqual(run(resumed, 10), run(a, 10));
  for (const s of [a, b, c, resumed]) s.close();
});

test('CropStream: bad input errors', () => {
  const src = writeSplit([lcgBytes(100, 1)]);
  const ok = { batch: 2, receptiveField: 4, targetLength: 4, seed: 1 };
  assert.throws(() => new CropStream(src, { ...ok, batch: 0 }), /batch/);
  assert.throws(() => new CropStream(src, { ...ok, receptiveField: -1 }), /receptiveField/);
  assert.throws(() => new CropStream(src, { ...ok, targetLength: 2.5 }), /targetLength/);
  assert.throws(() => new CropStream(src, { ...ok, seed: 0.5 }), /seed/);
  const empty = writeSplit([new Uint8Array(1), new Uint8Array(0)]);
  assert.throws(
    () => new CropStream(empty, ok),
    (e: Error) => e.message.includes(empty.path),
  );
});

// ---------------------------------------------------------------------------------------------

test('Rng: xoshiro128** reference outputs for state [1,2,3,4]', () => {
  // Values from the reference C implementation (prng.di.unimi.it/xoshiro128starstar.c).
  const r = new Rng({ s: [1, 2, 3, 4] });
  assert.deepEqual(
    Array.from({ length: 8 }, () => r.nextU32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849],
  );
});

test('Rng: nextInt range and rough uniformity; nextFloat in [0,1)', () => {
  const r = new Rng(2024);
  for (const n of [1, 2, 7, 1000, 2 ** 31 + 1, 2 ** 32, 2 ** 32 + 5, 2 ** 45 + 3]) {
    for (let i = 0; i < 2000; i++) {
      const v = r.nextInt(n);
      assert.ok(Number.isInteger(v) && v >= 0 && v < n, `nextInt(${n}) gave ${v}`);
    }
  }
  const counts = new Array(10).fill(0);
  const N = 100_000;
  for (let i = 0; i < N; i++) counts[r.nextInt(10)]++;
  const chi2 = counts.reduce((a, c) => a + (c - N / 10) ** 2 / (N / 10), 0);
  assert.ok(chi2 < 27.9, `chi-square ${chi2.toFixed(2)} (9 dof, p=0.001 critical 27.9)`);
  // Large n: the top half of the range must be hit about half the time (bias check above 2^32).
  let high = 0;
  for (let i = 0; i < 10_000; i++) if (r.nextInt(3 * 2 ** 40) >= 1.5 * 2 ** 40) high++;
  assert.ok(Math.abs(high - 5000) < 300, `high half hit ${high}/10000`);
  for (let i = 0; i < 10_000; i++) {
    const f = r.nextFloat();
    assert.ok(f >= 0 && f < 1);
  }
  assert.throws(() => r.nextInt(0));
  assert.throws(() => r.nextInt(1.5));
  assert.throws(() => r.nextInt(2 ** 53 + 2));
});

test('Rng: same seed same sequence, state JSON round trip continues it, bad state rejected', () => {
  const a = new Rng(5);
  const b = new Rng(5);
  const seq = Array.from({ length: 100 }, () => a.nextU32());
  assert.deepEqual(
    Array.from({ length: 100 }, () => b.nextU32()),
    seq,
  );
  const d = new Rng(6);
  assert.notDeepEqual(
    Array.from({ length: 10 }, () => d.nextU32()),
    seq.slice(0, 10),
  );
  assert.notDeepEqual(new Rng(5 + 2 ** 32).state(), new Rng(5).state());
  const c = new Rng(JSON.parse(JSON.stringify(a.state())));
  assert.deepEqual(
    Array.from({ length: 100 }, () => c.nextInt(1000)),
    Array.from({ length: 100 }, () => a.nextInt(1000)),
  );
  assert.throws(() => new Rng({ s: [0, 0, 0, 0] }));
  assert.throws(() => new Rng({ s: [1, 2, 3] } as never));
  assert.throws(() => new Rng(1.5));
});
