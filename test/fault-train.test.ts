/**
 * Fault injection on real `ctspeech train` processes: kill -9 at seeded random points (during
 * start-up, mid-step, mid-checkpoint), rerun, and the run must end exactly as an uninterrupted one;
 * two trainers started together on one run: one is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { smallCorpus } from './corpus-helpers.js';
import { CLI, REPO, tempDir } from './helpers.js';
import {
  assertSameRun,
  killAtRandom,
  killChildren,
  metrics,
  range,
  start,
  trainEnv,
  trainLines,
} from './train-process-helpers.js';

const STEPS = 40;

const args = (corpus: string, run: string) => [
  CLI,
  'train',
  corpus,
  '--run',
  run,
  '--model',
  'ct-tiny',
  '--steps',
  String(STEPS),
  '--batch',
  '2',
  '--warmup',
  '4',
  '--checkpoint-every',
  '4',
  '--valid-every',
  '10',
  '--valid-samples',
  '2000',
];
const env = trainEnv;

after(killChildren);

test('kill -9 at seeded random points: every rerun resumes, and the run ends as an uninterrupted one', async (t) => {
  const corpus = await smallCorpus();
  const root = tempDir();
  const straight = path.join(root, 'straight');
  const s = spawnSync(process.execPath, args(corpus, straight), { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(s.status, 0, s.stdout + s.stderr);

  const run = path.join(root, 'killed');
  const kills = await killAtRandom(args(corpus, run), run, { seed: 20261203, rounds: 6 });
  t.diagnostic(`killed: ${kills.join('; ')}`);
  assert.ok(kills.length >= 3, `killed ${kills.length} times: ${kills.join('; ')}`);
  assertSameRun(run, straight, kills, ['step', 'samples', 'lr', 'nll', 'loss']);
  assert.deepEqual(
    metrics(run).flatMap((m) => (m.valid_nll !== undefined ? [m.step] : [])),
    [10, 20, 30, 40],
  );
});

test('two trainers started together on one run: one is refused, the other trains every step once', async () => {
  const corpus = await smallCorpus();
  const run = path.join(tempDir(), 'run');
  const a = start(args(corpus, run));
  const b = start(args(corpus, run));
  const codes = [await a.exited, await b.exited];
  const refused = codes[0] === 2 ? a : b;
  assert.deepEqual([...codes].sort(), [0, 2], `exit codes ${codes}:\n--- a\n${a.out()}\n--- b\n${b.out()}`);
  assert.match(refused.out(), /is in use by process \d+/);
  assert.deepEqual(
    trainLines(run).map((m) => m.step),
    range(STEPS),
  );
});
