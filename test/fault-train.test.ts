/**
 * Fault injection on real `ctspeech train` processes: kill -9 at seeded random points (during
 * start-up, mid-step, mid-checkpoint), rerun, and the run must end exactly as an uninterrupted one;
 * two trainers started together on one run: one is refused.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { smallCorpus } from './corpus-helpers.js';
import { CLI, REPO, tempDir } from './helpers.js';

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
const env = { ...process.env, CI: '1' };

const children = new Set<ChildProcess>();
after(() => children.forEach((c) => c.kill('SIGKILL')));

function start(argv: string[]) {
  const proc = spawn(process.execPath, argv, { cwd: REPO, env });
  children.add(proc);
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) =>
    proc.on('exit', (code) => {
      children.delete(proc);
      r(code);
    }),
  );
  return { proc, out: () => out, exited };
}

function metrics(run: string): Record<string, number>[] {
  const file = path.join(run, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  // A kill mid-append may leave a torn last line; everything before it must parse.
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return lines.flatMap((l, i) => {
    try {
      return l.trim() ? [JSON.parse(l)] : [];
    } catch (e) {
      if (i < lines.length - 1) throw new Error(`${file}: line ${i + 1} is not JSON: ${l}`, { cause: e });
      return [];
    }
  });
}

const trainLines = (run: string) => metrics(run).filter((m) => m.nll !== undefined);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** mulberry32: the kill points are random but the same on every run of the test. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('kill -9 at seeded random points: every rerun resumes, and the run ends as an uninterrupted one', async () => {
  const corpus = await smallCorpus();
  const root = tempDir();
  const straight = path.join(root, 'straight');
  const s = spawnSync(process.execPath, args(corpus, straight), { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(s.status, 0, s.stdout + s.stderr);

  const run = path.join(root, 'killed');
  const random = rng(20261203);
  const kills: string[] = [];
  for (let round = 0; round < 6; round++) {
    const before = trainLines(run).length;
    const child = start(args(corpus, run));
    let finished = false;
    void child.exited.then(() => (finished = true));
    const byTime = random() < 0.4;
    const at = byTime ? Date.now() + 200 + random() * 2500 : before + 1 + Math.floor(random() * 8);
    const due = () => (byTime ? Date.now() >= at : trainLines(run).length >= at);
    while (!finished && !due()) await new Promise((r) => setTimeout(r, 5));
    if (finished) {
      assert.equal(await child.exited, 0, child.out());
      break;
    }
    child.proc.kill('SIGKILL');
    await child.exited;
    kills.push(byTime ? 'at a random time' : `after ${trainLines(run).length} logged steps`);
    // Between kills: metric lines are one per step from 1, whatever was torn; the checkpoint loads.
    const steps = trainLines(run).map((m) => m.step);
    assert.deepEqual(steps, range(steps.length), `round ${round} (${kills.at(-1)}): steps ${steps}`);
    if (fs.existsSync(path.join(run, 'checkpoint.safetensors')))
      loadCheckpoint(path.join(run, 'checkpoint.safetensors'));
  }
  assert.ok(kills.length >= 3, `killed ${kills.length} times: ${kills.join('; ')}`);
  const last = spawnSync(process.execPath, args(corpus, run), { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(last.status, 0, last.stdout + last.stderr);

  const pick = (m: Record<string, number>) => ({
    step: m.step,
    samples: m.samples,
    lr: m.lr,
    nll: m.nll,
    loss: m.loss,
  });
  assert.deepEqual(trainLines(run).map(pick), trainLines(straight).map(pick), 'the same steps, each once');
  const validSteps = (r: string) => metrics(r).flatMap((m) => (m.valid_nll !== undefined ? [m.step] : []));
  assert.deepEqual(validSteps(run), [10, 20, 30, 40]);
  assert.ok(
    fs
      .readFileSync(path.join(run, 'weights.safetensors'))
      .equals(fs.readFileSync(path.join(straight, 'weights.safetensors'))),
    `weights equal the uninterrupted run's, bit for bit (kills: ${kills.join('; ')})`,
  );
  const left = fs.readdirSync(run).filter((f) => f === '.lock' || /\.tmp-\d+$/.test(f));
  assert.deepEqual(left, [], 'no lock and no temporary file left behind');
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
