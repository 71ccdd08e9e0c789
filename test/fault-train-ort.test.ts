/**
 * Fault injection on real `ctspeech train --engine onnxruntime` processes, as fault-train.test.ts
 * does for tfjs: kill -9 at seeded random points (start-up, mid-step, mid-checkpoint), rerun, and
 * the run must end exactly as an uninterrupted onnxruntime run: the same metric lines, each step
 * once, and the same weights bit for bit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { smallCorpus } from './corpus-helpers.js';
import { removeOrphanGraphs, tempGraphFile } from '../src/util/temp-graphs.js';
import { CLI, REPO, tempDir } from './helpers.js';
import {
  assertSameRun,
  killAtRandom,
  killChildren,
  metrics,
  start,
  trainEnv,
  trainLines,
} from './train-process-helpers.js';

const STEPS = 40;

const args = (model: string, corpus: string, run: string) => [
  CLI,
  'train',
  corpus,
  '--run',
  run,
  '--model',
  model,
  '--engine',
  'onnxruntime',
  '--threads',
  '1',
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

let corpus = '';
before(async () => {
  corpus = await smallCorpus();
});

/** Trainers this file killed: their graph files are removed from the temp folder at the end (see the last test). */
const killed = new Set<number>();
after(() => {
  killChildren();
  for (const f of fs.readdirSync(os.tmpdir())) {
    const pid = /^ctspeech-train-(\d+)-[0-9a-f]+\.onnx$/.exec(f)?.[1];
    if (pid && killed.has(Number(pid))) fs.rmSync(path.join(os.tmpdir(), f), { force: true });
  }
});

// WaveNet gets fewer rounds: its crops' stream state is the part not covered by the transformer's run.
for (const [model, seed, rounds] of [
  ['ct-tiny', 20261204, 5],
  ['wavenet-tiny', 20261205, 3],
] as const) {
  test(`${model} on onnxruntime: kill -9 at seeded random points, resumed, ends as an uninterrupted run`, async (t) => {
    const root = tempDir();
    const straight = path.join(root, 'straight');
    const s = spawnSync(process.execPath, args(model, corpus, straight), { cwd: REPO, env, encoding: 'utf8' });
    assert.equal(s.status, 0, s.stdout + s.stderr);
    assert.equal(JSON.parse(fs.readFileSync(path.join(straight, 'train.json'), 'utf8')).engine, 'onnxruntime');

    const run = path.join(root, 'killed');
    const kills = await killAtRandom(args(model, corpus, run), run, {
      seed,
      rounds,
      onKilled: (pid) => killed.add(pid),
    });
    assert.ok(kills.length >= rounds - 2, `killed ${kills.length} times: ${kills.join('; ')}`);
    assertSameRun(run, straight, kills, ['step', 'samples', 'lr', 'nll', 'loss', 'grad_norm']);
    assert.deepEqual(
      metrics(run).flatMap((m) => (m.valid_nll !== undefined ? [m.step] : [])),
      [10, 20, 30, 40],
    );
    t.diagnostic(`killed ${kills.join('; ')}`);
  });
}

// OrtTrainStep writes the traced training graph to os.tmpdir()/ctspeech-train-<pid>-<hex>.onnx; it
// was removed only on dispose, so a trainer killed with -9 left it behind for good (145 KB for
// ct-tiny, 665 KB for wavenet-tiny, one per kill). Now the file goes once the session holds it, and
// the next trainer removes files of writers no longer alive (killed while a session was created).
test('a trainer killed with -9 leaves no training graph behind once the run is resumed', async () => {
  const run = path.join(tempDir(), 'run');
  const child = start(args('ct-tiny', corpus, run));
  const pid = child.proc.pid!;
  const graphs = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`ctspeech-train-${pid}-`));
  let finished = false;
  void child.exited.then(() => (finished = true));
  while (!finished && trainLines(run).length < 2) await new Promise((r) => setTimeout(r, 5));
  assert.ok(!finished, child.out());
  assert.equal(graphs().length, 0, 'the running trainer keeps no graph file once its session holds it');
  child.proc.kill('SIGKILL');
  killed.add(pid);
  await child.exited;
  const rerun = spawnSync(process.execPath, args('ct-tiny', corpus, run), { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
  assert.deepEqual(graphs(), [], "the killed trainer's graph is gone");
});

test('the next trainer removes graphs of trainers killed mid-open, and only theirs', () => {
  const dir = tempDir();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const orphan = `ctspeech-train-${dead.stdout}-0badf00d.onnx`;
  const mine = path.basename(tempGraphFile('valid', dir));
  for (const f of [orphan, mine, 'other.onnx']) fs.writeFileSync(path.join(dir, f), 'x');
  assert.deepEqual(removeOrphanGraphs(dir), [orphan]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [mine, 'other.onnx'].sort());
});
