import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FolderLockedError, LOCK_FILE, lockFolder } from '../src/util/folder-lock.js';
import { REPO, tempDir } from './helpers.js';

const MODULE = path.join(REPO, 'dist', 'src', 'util', 'folder-lock.js');

/** A script for another process: take the lock on `dir`, report, then stay (or not). */
function locker(dir: string, then: 'exit' | 'hold'): string[] {
  const script =
    `import { lockFolder } from ${JSON.stringify(MODULE)};\n` +
    `try { lockFolder(${JSON.stringify(dir)}, 'test'); console.log('locked'); }\n` +
    `catch (e) { console.log(e.constructor.name + ': ' + e.message); process.exit(3); }\n` +
    (then === 'hold' ? 'setInterval(() => {}, 1000);\n' : '');
  return ['--input-type=module', '-e', script];
}

test('a second lock from another process is refused, naming the owner', () => {
  const dir = tempDir();
  const lock = lockFolder(dir, 'prepare');
  try {
    const r = spawnSync(process.execPath, locker(dir, 'exit'), { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stdout, new RegExp(`^FolderLockedError: ${dir} is in use by process ${process.pid} on `));
    assert.match(r.stdout, /\(prepare: /);
    assert.match(r.stdout, new RegExp(`remove ${path.join(dir, LOCK_FILE)}`));
  } finally {
    lock.release();
  }
});

test('a lock left by a killed process is taken over', async () => {
  const dir = tempDir();
  const child = spawn(process.execPath, locker(dir, 'hold'), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  assert.throws(() => lockFolder(dir, 'train'), FolderLockedError, 'refused while the owner lives');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(fs.existsSync(path.join(dir, LOCK_FILE)), 'kill -9 leaves the lock file');
  const lock = lockFolder(dir, 'train');
  const owner = JSON.parse(fs.readFileSync(lock.file, 'utf8')) as { pid: number; command: string };
  assert.equal(owner.pid, process.pid);
  assert.match(owner.command, /^train: /);
  lock.release();
});

test('release removes the lock file, and the folder can be locked again', () => {
  const dir = path.join(tempDir(), 'made', 'here');
  const a = lockFolder(dir, 'prepare');
  assert.ok(fs.existsSync(a.file));
  assert.throws(() => lockFolder(dir, 'prepare'), /is in use by process/);
  a.release();
  assert.ok(!fs.existsSync(a.file));
  a.release(); // twice is harmless
  const b = lockFolder(dir, 'prepare');
  b.release();
  assert.deepEqual(fs.readdirSync(dir), []);
});
