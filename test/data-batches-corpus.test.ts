import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CropStream, SegmentStream } from '../src/data/batches.js';
import { splitSource } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { SAMPLES, tempDir } from './helpers.js';

// The streams over a real prepared corpus of the bundled speech, wired through the manifest.
test(
  'SegmentStream rows walk the real train split contiguously, ' + 'resetting exactly at file and share starts',
  async () => {
    const out = path.join(tempDir(), 'corpus');
    const { manifest } = await prepareCorpus({ inputs: [SAMPLES], out });
    const src = splitSource(out, manifest, 'train');
    const bytes = fs.readFileSync(src.path);
    const B = 3;
    const n = 8192;
    const T = src.files.reduce((a, f) => a + f.length, 0);
    const fileStarts = src.files.map((f) => f.offset);
    const shareStart = (b: number) => Math.floor((b * T) / B);
    // Where a row goes after a reset: the next file start inside its share, or back to the share start.
    const nextStart = (b: number, p: number) => {
      const end = shareStart(b + 1);
      const f = fileStarts.find((o) => o > p && o < end - 1);
      return f ?? shareStart(b);
    };
    const s = new SegmentStream(src, { batch: B, segment: n });
    const pos = Array.from({ length: B }, (_, b) => shareStart(b));
    const wraps = new Array(B).fill(0);
    let steps = 0;
    while (wraps.some((w) => w < 2)) {
      const batch = s.next();
      for (let b = 0; b < B; b++) {
        if (batch.reset[b] && steps > 0) {
          pos[b] = nextStart(b, pos[b]);
          if (pos[b] === shareStart(b)) wraps[b]++;
        }
        let v = 0;
        while (v < n && batch.mask[b * n + v]) v++;
        for (let i = v; i < n; i++) assert.equal(batch.mask[b * n + i], 0, 'padding only at the end');
        assert.ok(v > 0);
        const run = [...batch.inputs.subarray(b * n, b * n + v), batch.targets[b * n + v - 1]];
        assert.deepEqual(run, [...bytes.subarray(pos[b], pos[b] + v + 1)], `row ${b} step ${steps}`);
        const fileEnd = Math.min(
          ...src.files.filter((f) => f.offset + f.length > pos[b]).map((f) => f.offset + f.length),
        );
        assert.ok(pos[b] + v < Math.min(fileEnd, shareStart(b + 1)), 'no pair crosses a file or share end');
        pos[b] += v;
      }
      steps++;
      assert.ok(steps < 5000, 'rows must wrap');
    }
    s.close();
  },
);

test('CropStream crops of the real valid split are contiguous runs of one file', async () => {
  const out = path.join(tempDir(), 'corpus');
  const { manifest } = await prepareCorpus({ inputs: [SAMPLES], out });
  const src = splitSource(out, manifest, 'valid');
  const bytes = fs.readFileSync(src.path);
  const R = 1024;
  const n = 256;
  const s = new CropStream(src, { batch: 8, receptiveField: R, targetLength: n, seed: 3 });
  for (let k = 0; k < 5; k++) {
    const batch = s.next();
    const L = R + n - 1;
    for (let b = 0; b < 8; b++) {
      const inp = batch.inputs.subarray(b * L, (b + 1) * L);
      const tgt = batch.targets.subarray(b * L, (b + 1) * L);
      for (let i = 0; i + 1 < L; i++) assert.equal(tgt[i], inp[i + 1]);
      const needle = Buffer.from(Uint8Array.from(inp));
      const at = bytes.indexOf(needle);
      assert.ok(at >= 0, 'crop found in the split binary');
      const file = src.files.find((f) => at >= f.offset && at + L + 1 <= f.offset + f.length);
      assert.ok(file, 'crop lies inside one file');
      assert.equal(bytes[at + L], tgt[L - 1]);
    }
    assert.equal(batch.tokens, 8 * n);
  }
  s.close();
});
