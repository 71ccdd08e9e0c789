import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline, seededRuns } from '../src/cli/pipeline-file.js';
import { formatSpread, rankByMean, rankingSentence, spread } from '../src/report/seed-stats.js';
import { tempDir } from './helpers.js';

test('spread: mean, sample standard deviation (n - 1), min and max', () => {
  const s = spread([4.7, 4.66, 4.74])!;
  assert.equal(s.n, 3);
  assert.ok(Math.abs(s.mean - 4.7) < 1e-12);
  // sum of squared deviations 0.0032 over n - 1 = 2
  assert.ok(Math.abs(s.sd! - Math.sqrt(0.0016)) < 1e-12);
  assert.deepEqual([s.min, s.max], [4.66, 4.74]);
  assert.equal(formatSpread(s), '4.700 ± 0.040 (n = 3, 4.660–4.740)');
  assert.equal(spread([]), null);
  const one = spread([4.5])!;
  assert.equal(one.sd, null);
  assert.equal(formatSpread(one), '4.500');
});

test('rankByMean calls a gap a ranking only beyond two standard errors (Welch)', () => {
  const a = { name: 'a', spread: spread([4.5, 4.52, 4.54])! }; // mean 4.52, sd 0.02
  const near = { name: 'near', spread: spread([4.51, 4.55, 4.59])! }; // mean 4.55, sd 0.04
  const far = { name: 'far', spread: spread([4.7, 4.72, 4.74])! }; // mean 4.72, sd 0.02
  const r = rankByMean([far, near, a])!;
  assert.equal(r.best, 'a');
  const [n, f] = r.others;
  const seNear = Math.sqrt(0.02 ** 2 / 3 + 0.04 ** 2 / 3);
  assert.equal(n.name, 'near');
  assert.ok(Math.abs(n.z! - 0.03 / seNear) < 1e-9);
  assert.equal(n.separated, false);
  assert.equal(f.separated, true);
  const text = rankingSentence(r, true);
  assert.match(
    text,
    new RegExp(
      /^\*\*Lowest mean test NLL: a\*\* at 4\.520 bits per sample; /.source +
        /near \+0\.030 bits \(1\.2 standard errors: within the seed spread, not a ranking\), /.source +
        /far \+0\.200 bits \(12\.2 standard errors: a real gap\)\.$/.source,
    ),
  );
  // Single seeds: no verdict, and the sentence says why.
  const single = rankByMean([
    { name: 'x', spread: spread([4.7])! },
    { name: 'y', spread: spread([4.72])! },
  ])!;
  assert.equal(single.others[0].z, null);
  assert.match(rankingSentence(single, false), /One seed per model/);
});

test('pipeline seeds: run folders <run>-seed<s>, and a bad list is an error naming the step', () => {
  assert.deepEqual(seededRuns('ct', [0, 2]), [
    { run: 'ct-seed0', seed: 0 },
    { run: 'ct-seed2', seed: 2 },
  ]);
  assert.deepEqual(seededRuns('ct', undefined), [{ run: 'ct', seed: undefined }]);
  const dir = tempDir();
  const file = path.join(dir, 'p.yaml');
  const write = (seeds: string) =>
    fs.writeFileSync(
      file,
      `name: p\nworkdir: w\nvars: { seeds: "${seeds}" }\n` +
        `steps:\n  - train: { data: corpus, run: ct, seeds: "\${seeds}" }\n`,
    );
  write('0, 1,2');
  const ok = loadPipeline(file);
  assert.deepEqual((ok.steps[0] as { train: { seeds: number[] } }).train.seeds, [0, 1, 2]);
  write('3');
  assert.deepEqual((loadPipeline(file).steps[0] as { train: { seeds: number[] } }).train.seeds, [3]);
  for (const bad of ['1,x', '', '1,1', '-1', '99999999999999999999']) {
    write(bad);
    assert.throws(() => loadPipeline(file), /steps\.0\.train\.seeds: /, `seeds "${bad}"`);
  }
  // A step named after an inherited property of a plain object is an unknown kind, not a crash.
  fs.writeFileSync(file, 'name: p\nworkdir: w\nsteps:\n  - toString: {}\n');
  assert.throws(() => loadPipeline(file), /steps\.0: each step must be one of/);
});
