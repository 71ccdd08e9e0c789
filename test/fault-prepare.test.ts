/**
 * Fault injection on `prepare`: a writer killed at any point, or a disk that fills up, must leave a
 * corpus that opens with either its old or its new content, complete, never a mix or a torn file.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readManifest } from '../src/data/manifest.js';
import { prepareCorpus } from '../src/data/prepare.js';
import { CLI, ffmpegFixture, REPO, SAMPLES, tempDir } from './helpers.js';
import { corpusContent } from './corpus-helpers.js';

function copyDir(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
}

/** Seeded, so a failure names the kill point that caused it and reruns the same points. */
function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

const env = { ...process.env, CI: '1' };

test('kill -9 at random points of a re-prepare leaves the old or the new corpus, complete', async () => {
  const inp = path.join(tempDir(), 'audio');
  fs.mkdirSync(inp);
  const take = (rel: string, as = path.basename(rel)) => fs.copyFileSync(path.join(SAMPLES, rel), path.join(inp, as));
  for (const rel of [
    'train/vm-review.wav',
    'train/dir-intro.flac',
    'valid/demo-abouttotry.wav',
    'test/vm-newuser.flac',
  ])
    take(rel);
  take('train/vm-options.flac', 'gone.flac');
  const base = path.join(tempDir(), 'base');
  await prepareCorpus({ inputs: [inp], out: base, workers: 1 });
  const oldContent = corpusContent(base);

  // The new input: one file changed, one removed, two added.
  take('test/vm-forwardoptions.wav', 'vm-review.wav');
  fs.rmSync(path.join(inp, 'gone.flac'));
  take('valid/agent-alreadyon.flac');
  take('train/conf-adminmenu-18.wav');
  const ref = path.join(tempDir(), 'ref');
  copyDir(base, ref);
  await prepareCorpus({ inputs: [inp], out: ref, workers: 1 });
  const newContent = corpusContent(ref);
  assert.notDeepEqual(newContent, oldContent);

  const corpus = path.join(tempDir(), 'corpus');
  const args = [CLI, 'prepare', inp, '--out', corpus, '-j', '1'];
  /** Starts a re-prepare and resolves once it holds the folder: from there on it writes. */
  const start = async () => {
    copyDir(base, corpus);
    const p = spawn(process.execPath, args, { cwd: REPO, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    let over = false;
    void exited.then(() => (over = true));
    while (!over && !fs.existsSync(path.join(corpus, '.lock'))) await new Promise((r) => setTimeout(r, 1));
    return { p, exited, lockedAt: Date.now() };
  };

  // One undisturbed run measures the span to draw kill points from (a range, not a limit on anything).
  const timed = await start();
  assert.equal(await timed.exited, 0);
  const span = Date.now() - timed.lockedAt;
  assert.deepEqual(corpusContent(corpus), newContent);

  const draw = rng(20240611);
  for (let k = 0; k < 5; k++) {
    const delay = Math.floor(draw() * span);
    const run = await start();
    await new Promise((r) => setTimeout(r, delay));
    run.p.kill('SIGKILL');
    await run.exited;
    const got = corpusContent(corpus);
    assert.ok(
      JSON.stringify(got) === JSON.stringify(oldContent) || JSON.stringify(got) === JSON.stringify(newContent),
      `kill ${k} at ${delay} ms after the lock left a corpus that is neither the old nor the new one`,
    );
    // The next prepare takes over the dead writer's lock, clears what it left, and finishes the job.
    await prepareCorpus({ inputs: [inp], out: corpus, workers: 1 });
    assert.deepEqual(corpusContent(corpus), newContent, `re-prepare after kill ${k}`);
    const m = readManifest(corpus);
    assert.deepEqual(fs.readdirSync(corpus).sort(), ['manifest.json', ...Object.values(m.binaries)].sort());
  }
});

/** A tmpfs of `size` bytes mounted for the test, or the reason there cannot be one. */
function smallDisk(size: string): { dir: string; unmount(): void } | string {
  if (process.platform !== 'linux') return 'tmpfs needs Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const dir = tempDir('ctspeech-tmpfs-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `mount -t tmpfs failed here: ${(r.stderr || String(r.error)).trim()}`;
  return { dir, unmount: () => execFileSync('umount', [dir]) };
}

test('a disk that fills up mid-prepare is a clear error, and the previous corpus stays as it was', async (t) => {
  // Mounted here, not at load, so a run that filters this test out mounts nothing it would not unmount.
  const disk = smallDisk('512k');
  if (typeof disk === 'string') return t.skip(disk);
  const { dir, unmount } = disk;
  try {
    const inp = path.join(tempDir(), 'audio');
    fs.mkdirSync(inp);
    const tone = (d: number) => `aevalsrc=0.4*sin(2*PI*300*t)*sin(2*PI*2*t):s=16000:d=${d}`;
    ffmpegFixture(path.join(inp, 'first.wav'), tone(0.5), ['-c:a', 'pcm_s16le']);
    const corpus = path.join(dir, 'corpus');
    await prepareCorpus({ inputs: [inp], out: corpus });
    const before = Object.fromEntries(fs.readdirSync(corpus).map((n) => [n, fs.readFileSync(path.join(corpus, n))]));
    const check = (what: string, written: RegExp) => {
      const r = spawnSync(process.execPath, [CLI, 'prepare', inp, '--out', corpus], { encoding: 'utf8', env });
      assert.equal(r.status, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^ctspeech: error: disk full while writing ${written.source}`, 'm'));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      const after = Object.fromEntries(fs.readdirSync(corpus).map((n) => [n, fs.readFileSync(path.join(corpus, n))]));
      assert.deepEqual(after, before, `${what}: the corpus folder holds exactly what it held`);
    };
    // Many files, each small enough to come back from its decoder in memory: the split binaries fill the disk.
    for (let i = 0; i < 6; i++) ffmpegFixture(path.join(inp, `more${i}.wav`), tone(6), ['-c:a', 'pcm_s16le']);
    check('split binaries', /\S+(codes-(train|valid|test)-|manifest\.json)/);
    for (let i = 0; i < 6; i++) fs.rmSync(path.join(inp, `more${i}.wav`));
    // One long file, whose codes a decoder spills to disk before the split binary gets them.
    ffmpegFixture(path.join(inp, 'long.wav'), tone(70), ['-c:a', 'pcm_s16le']);
    check('spill file', /\S+\.spill-/);
  } finally {
    unmount();
  }
});
