import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BinaryWriter } from '../src/data/corpus-writer.js';
import { readManifest } from '../src/data/manifest.js';
import { NothingPreparedError, prepareCorpus } from '../src/data/prepare.js';
import { CLI, REPO, SAMPLES, tempDir } from './helpers.js';
import { corpusContent } from './corpus-helpers.js';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Every file in a folder with its bytes: "changed nothing" means this is equal before and after. */
function snapshot(dir: string): Record<string, string> {
  const snap: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) snap[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return snap;
}

function audioDir(names: string[]): string {
  const dir = path.join(tempDir(), 'audio');
  fs.mkdirSync(dir);
  for (const n of names) fs.copyFileSync(path.join(SAMPLES, n), path.join(dir, path.basename(n)));
  return dir;
}

test('a re-prepare that finds no audio (drive unmounted) exits 2 and changes nothing', async () => {
  const inp = audioDir(['train/vm-review.wav', 'test/vm-newuser.flac']);
  const out = path.join(tempDir(), 'corpus');
  await prepareCorpus({ inputs: [inp], out });
  const before = snapshot(out);
  for (const n of fs.readdirSync(inp)) fs.rmSync(path.join(inp, n));
  const r = run(['prepare', inp, '--out', out]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /no audio found in .*audio; .*corpus was left unchanged \(2 file\(s\)\)/);
  assert.deepEqual(snapshot(out), before);
  // Files that are there but all fail to decode change nothing either.
  fs.writeFileSync(path.join(inp, 'broken.wav'), 'RIFF....WAVEnot really');
  await assert.rejects(prepareCorpus({ inputs: [inp], out, prune: true }), (e: NothingPreparedError) => {
    assert.ok(e instanceof NothingPreparedError);
    assert.match(e.message, /no audio could be prepared from .*; .*corpus was left unchanged/);
    assert.match(e.skipped[0].source, /broken\.wav$/);
    return true;
  });
  assert.deepEqual(snapshot(out), before);
});

test('a first prepare that finds no audio leaves no folder behind', async () => {
  const inp = audioDir([]);
  const out = path.join(tempDir(), 'new', 'corpus');
  await assert.rejects(prepareCorpus({ inputs: [inp], out }), /no audio found/);
  assert.ok(!fs.existsSync(path.dirname(out)), 'the folders this run made are gone');
});

test('dropping more than half of a corpus needs --prune; the refusal says how many and what to do', async () => {
  const inp = audioDir(['train/vm-review.wav', 'test/vm-newuser.flac', 'valid/demo-abouttotry.wav']);
  const out = path.join(tempDir(), 'corpus');
  await prepareCorpus({ inputs: [inp], out });
  const before = snapshot(out);
  fs.rmSync(path.join(inp, 'vm-review.wav'));
  fs.rmSync(path.join(inp, 'vm-newuser.flac'));
  const r = run(['prepare', inp, '--out', out]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /2 of the 3 files in corpus .* are no longer found under the inputs \(e\.g\. .*vm-/);
  assert.match(r.err, /left unchanged.*--prune/s);
  assert.deepEqual(snapshot(out), before);
  // Files that still exist but no longer decode count as dropped too.
  fs.writeFileSync(path.join(inp, 'vm-review.wav'), 'RIFF....WAVEcut');
  fs.writeFileSync(path.join(inp, 'vm-newuser.flac'), 'not flac');
  await assert.rejects(
    prepareCorpus({ inputs: [inp], out }),
    /2 of the 3 files .* vanished from the inputs or could not be decoded/,
  );
  assert.deepEqual(snapshot(out), before);

  const pruned = await prepareCorpus({ inputs: [inp], out, prune: true });
  assert.deepEqual(
    readManifest(out).files.map((f) => f.path),
    ['audio/demo-abouttotry.wav'],
  );
  assert.equal(pruned.skipped.length, 2);
});

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

function exited(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  p.stdout?.on('data', (d) => (out += d));
  p.stderr?.on('data', (d) => (err += d));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out, err })));
}

test('two prepares on one --out: the second is refused while the first writes, and the corpus is whole', async () => {
  const ref = path.join(tempDir(), 'ref');
  await prepareCorpus({ inputs: [SAMPLES], out: ref, workers: 1 });
  const out = path.join(tempDir(), 'corpus');
  const args = [CLI, 'prepare', SAMPLES, '--out', out, '-j', '1'];
  const env = { ...process.env, CI: '1' };
  // Stop the first writer mid-run (its binaries exist, its manifest does not) so the two surely overlap.
  let a: ChildProcess | null = null;
  let aDone: Promise<{ code: number | null; out: string; err: string }> | null = null;
  for (let attempt = 0; attempt < 5 && !a; attempt++) {
    fs.rmSync(out, { recursive: true, force: true });
    const p = spawn(process.execPath, args, { cwd: REPO, env });
    const done = exited(p);
    let over = false;
    void done.then(() => (over = true));
    await until(() => over || (fs.existsSync(out) && fs.readdirSync(out).some((n) => n.startsWith('codes-'))));
    p.kill('SIGSTOP');
    if (!over && !fs.existsSync(path.join(out, 'manifest.json'))) {
      a = p;
      aDone = done;
    } else {
      p.kill('SIGCONT');
      await done;
    }
  }
  assert.ok(a && aDone, 'the first prepare was caught mid-run');
  const b = await exited(spawn(process.execPath, args, { cwd: REPO, env }));
  a.kill('SIGCONT');
  const first = await aDone;
  assert.equal(first.code, 0, first.err);
  assert.equal(b.code, 2, b.err + b.out);
  assert.match(b.err, new RegExp(`is in use by process ${a.pid} .*prepare`));
  assert.deepEqual(corpusContent(out), corpusContent(ref));
  assert.ok(!fs.existsSync(path.join(out, '.lock')), 'the lock is released');
});

test('temp files of dead writers are removed, those of live processes kept', () => {
  const inp = audioDir(['train/vm-review.wav']);
  const out = path.join(tempDir(), 'corpus');
  fs.mkdirSync(out);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
  const stale = [`manifest.json.tmp-${dead}`, `.spill-abc-3.u8.tmp-${dead}`];
  for (const n of stale) fs.writeFileSync(path.join(out, n), 'x'.repeat(1000));
  const live = `manifest.json.tmp-${process.pid}`;
  fs.writeFileSync(path.join(out, live), 'mine');
  const r = run(['prepare', inp, '--out', out]);
  assert.equal(r.code, 0, r.err);
  for (const n of stale) assert.ok(!fs.existsSync(path.join(out, n)), `${n} removed`);
  assert.ok(fs.existsSync(path.join(out, live)), 'a live process keeps its temp file');
});

test('an --out that cannot be created fails at once with the reason', { skip: !fs.existsSync('/proc/self') }, () => {
  // Node's recursive mkdir loops forever on /proc/foo; the timeout only keeps a regression from hanging the suite.
  const r = spawnSync(process.execPath, [CLI, 'prepare', SAMPLES, '--out', '/proc/ctspeech-nope/corpus'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, CI: '1' },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /cannot create output folder \/proc\/ctspeech-nope\/corpus \(ENOENT.*\)/);
});

test('more workers than cores are lowered to the core count, and the run says so', () => {
  const inp = audioDir(['train/vm-review.wav']);
  const asked = os.availableParallelism() + 5;
  const r = run(['prepare', inp, '--out', path.join(tempDir(), 'c'), '-j', String(asked)]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`--workers ${asked} lowered to ${os.availableParallelism()}, one per CPU core`));
  assert.match(run(['prepare', '--help']).out, /--prune +let this run drop more than half of the corpus/);
});

test('a full disk is a clear error naming the file, not an ENOSPC stack', { skip: !fs.existsSync('/dev/full') }, () => {
  // Through a link, so that abandon() (which deletes what it wrote) can only ever remove the link.
  const dir = tempDir();
  const file = path.join(dir, 'codes-train-x.u8');
  fs.symlinkSync('/dev/full', file);
  const w = new BinaryWriter(file, dir);
  assert.throws(
    () => w.write(new Uint8Array(4096)),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2);
      assert.equal(e.message.split(';')[0], `disk full while writing ${file}`);
      assert.match(e.message, /previous corpus in .* is intact/);
      return true;
    },
  );
  w.abandon();
  assert.ok(fs.existsSync('/dev/full'));
});
