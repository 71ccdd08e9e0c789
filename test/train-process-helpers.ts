/** Running real `ctspeech train` processes in fault tests: start, kill, read what they logged. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { REPO } from './helpers.js';

export const trainEnv = { ...process.env, CI: '1' };

const children = new Set<ChildProcess>();

/** Kills every process `start` launched that is still running (for an `after` hook). */
export function killChildren(): void {
  children.forEach((c) => c.kill('SIGKILL'));
}

export function start(argv: string[]) {
  const proc = spawn(process.execPath, argv, { cwd: REPO, env: trainEnv });
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

export function metrics(run: string): Record<string, number>[] {
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

export const trainLines = (run: string) => metrics(run).filter((m) => m.nll !== undefined);
export const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** mulberry32: the kill points are random but the same on every run of the test. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Starts `argsFor(run)` up to `rounds` times and kills it with -9 at seeded points, by time
 * (start-up included) or by steps logged; checks between kills that the metric lines are one per
 * step and the checkpoint loads; then reruns to completion. Returns where it killed.
 */
export async function killAtRandom(
  argv: string[],
  run: string,
  opts: { seed: number; rounds: number; onKilled?(pid: number): void },
): Promise<string[]> {
  const random = rng(opts.seed);
  const kills: string[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    const before = trainLines(run).length;
    const child = start(argv);
    let finished = false;
    void child.exited.then(() => (finished = true));
    const byTime = random() < 0.4;
    const at = byTime ? Date.now() + 200 + random() * 2500 : before + 1 + Math.floor(random() * 8);
    // A timed kill also fires after 8 new steps, so a fast engine cannot finish the run in one round.
    const timeUp = () => byTime && Date.now() >= at;
    const due = () => timeUp() || trainLines(run).length >= (byTime ? before + 8 : at);
    while (!finished && !due()) await new Promise((r) => setTimeout(r, 5));
    if (finished) {
      assert.equal(await child.exited, 0, child.out());
      break;
    }
    const timed = timeUp();
    child.proc.kill('SIGKILL');
    opts.onKilled?.(child.proc.pid!);
    await child.exited;
    kills.push(timed ? 'at a random time' : `after ${trainLines(run).length} logged steps`);
    // Between kills: metric lines are one per step from 1, whatever was torn; the checkpoint loads.
    const steps = trainLines(run).map((m) => m.step);
    assert.deepEqual(steps, range(steps.length), `round ${round} (${kills.at(-1)}): steps ${steps}`);
    if (fs.existsSync(path.join(run, 'checkpoint.safetensors')))
      loadCheckpoint(path.join(run, 'checkpoint.safetensors'));
  }
  const last = spawnSync(process.execPath, argv, { cwd: REPO, env: trainEnv, encoding: 'utf8' });
  assert.equal(last.status, 0, last.stdout + last.stderr);
  return kills;
}

/** The killed-and-resumed run logged the same steps as the uninterrupted one and ended with its weights. */
export function assertSameRun(run: string, straight: string, kills: string[], fields: string[]): void {
  const pick = (m: Record<string, number>) => Object.fromEntries(fields.map((f) => [f, m[f]]));
  assert.deepEqual(trainLines(run).map(pick), trainLines(straight).map(pick), 'the same steps, each once');
  const validSteps = (r: string) => metrics(r).flatMap((m) => (m.valid_nll !== undefined ? [m.step] : []));
  assert.deepEqual(validSteps(run), validSteps(straight));
  assert.ok(
    fs
      .readFileSync(path.join(run, 'weights.safetensors'))
      .equals(fs.readFileSync(path.join(straight, 'weights.safetensors'))),
    `weights equal the uninterrupted run's, bit for bit (kills: ${kills.join('; ')})`,
  );
  const left = fs.readdirSync(run).filter((f) => f === '.lock' || /\.tmp-\d+$/.test(f) || f.endsWith('.onnx'));
  assert.deepEqual(left, [], 'no lock and no temporary file left behind');
}
