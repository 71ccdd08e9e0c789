import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { CLI, REPO, SAMPLES, tempDir } from './helpers.js';

function run(args: string[], cwd = REPO) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help teaches the commands', () => {
  const r = run(['--help']);
  assert.equal(r.code, 0);
  for (const c of ['prepare', 'info', 'pipeline', 'bench']) assert.match(r.out, new RegExp(`\\b${c}\\b`));
  const p = run(['prepare', '--help']);
  assert.equal(p.code, 0);
  assert.match(p.out, /--sample-rate/);
  assert.match(p.out, /Examples:/);
});

test('bad flags and paths exit non-zero and name the culprit', () => {
  const root = tempDir();
  const missing = run(['prepare', path.join(root, 'nowhere'), '--out', path.join(root, 'c')]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /nowhere does not exist/);
  const rate = run(['prepare', SAMPLES, '--out', path.join(root, 'c'), '--sample-rate', 'fast']);
  assert.notEqual(rate.code, 0);
  assert.match(rate.err, /--sample-rate/);
  const frac = run(['prepare', SAMPLES, '--out', path.join(root, 'c'), '--valid', '1.5']);
  assert.notEqual(frac.code, 0);
  assert.match(frac.err, /--valid/);
  fs.writeFileSync(path.join(root, 'afile'), 'x');
  const outFile = run(['prepare', SAMPLES, '--out', path.join(root, 'afile')]);
  assert.equal(outFile.code, 2);
  assert.match(outFile.err, /afile exists and is not a folder/);
  const noOut = run(['prepare', SAMPLES]);
  assert.notEqual(noOut.code, 0);
  assert.match(noOut.err, /--out/);
  const info = run(['info', root]);
  assert.equal(info.code, 2);
  assert.match(info.err, /not a prepared corpus/);
  fs.writeFileSync(path.join(root, 'bad.yaml'), 'name: x\nworkdir: w\nsteps:\n  - fit: {}\n');
  const pipe = run(['pipeline', path.join(root, 'bad.yaml')]);
  assert.equal(pipe.code, 2);
  assert.match(pipe.err, /steps\.0: each step must be one of prepare, info, train, eval, generate, attention, report/);
});

test('the quickstart pipeline runs end to end (shortened training)', () => {
  const work = tempDir();
  // The real quickstart file, with training cut to seconds and evaluation to one file.
  const doc = YAML.parse(fs.readFileSync(path.join(REPO, 'pipelines', 'quickstart.yaml'), 'utf8'));
  const shortClip = path.join(work, 'short', 'clip.wav');
  fs.mkdirSync(path.dirname(shortClip));
  fs.copyFileSync(path.join(SAMPLES, 'test', 'vm-forwardoptions.wav'), shortClip);
  fs.truncateSync(shortClip, 44 + 2 * 8000); // half a second of its 16-bit PCM
  const hdr = fs.readFileSync(shortClip);
  hdr.writeUInt32LE(hdr.length - 8, 4);
  hdr.writeUInt32LE(2 * 8000, 40);
  fs.writeFileSync(shortClip, hdr);
  for (const step of doc.steps) {
    if (step.train) Object.assign(step.train, { model: 'ct-tiny', steps: 12, validEvery: 6, validSamples: 2000 });
    if (step.eval) step.eval.data = path.dirname(shortClip);
    if (step.generate) step.generate.seconds = 0.05;
  }
  const file = path.join(work, 'quick.yaml');
  fs.writeFileSync(file, YAML.stringify(doc));
  const r = run(['pipeline', file, '--workdir', work]);
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /decoded \d+ file\(s\)/);
  assert.match(r.out, /entropy \(bits\)/);
  const m = JSON.parse(fs.readFileSync(path.join(work, 'corpus', 'manifest.json'), 'utf8'));
  assert.equal(m.skipped.length, 0, JSON.stringify(m.skipped));
  for (const split of ['train', 'valid', 'test'])
    assert.ok(
      m.files.some((f: { split: string }) => f.split === split),
      `${split} has files`,
    );
  assert.ok(m.files.some((f: { decoder: string }) => f.decoder === 'wav'));
  assert.ok(m.files.some((f: { decoder: string }) => f.decoder === 'ffmpeg'));
  const png = fs.readFileSync(path.join(work, 'code-histogram.png'));
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  for (const f of [
    'ct-small/weights.safetensors',
    'ct-small/checkpoint.safetensors',
    'ct-small/curves.png',
    'ct-small/eval-test.json',
    'report.md',
    'nll-comparison.png',
  ])
    assert.ok(fs.existsSync(path.join(work, f)), f);
  const report = fs.readFileSync(path.join(work, 'report.md'), 'utf8');
  // 12 steps of 8 rows x 16 positions (ct-tiny's segment) = 1,536 training samples.
  assert.match(report, /\| Compressive Transformer \| `ct-small` \| 0\.04M \| 1,536 \|/);
  for (const clip of ['prompt', 'continuation', 'real'])
    assert.match(report, new RegExp(`\\[${clip}\\.wav\\]\\(media/ct-small/${clip}\\.wav\\)`));
  const html = fs.readFileSync(path.join(work, 'report.html'), 'utf8');
  assert.equal((html.match(/<audio /g) ?? []).length, 3, 'prompt, continuation and the real audio that followed');
  assert.match(r.out.trim().split('\n').at(-1)!, /open in a browser: .*report\.html$/, 'the page is the last word');
  assert.ok(
    fs.statSync(path.join(work, 'ct-small', 'generated', 'continuation.wav')).size > 44 + 2 * 16000,
    'prompt (1 s) + continuation',
  );
  // A second run reuses every prepared file and every trained step.
  const again = run(['pipeline', file, '--workdir', work]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /decoded 0 file\(s\), reused \d+ unchanged/);
  assert.match(again.out, /finished at step 12/);
  const info = run(['info', path.join(work, 'corpus'), '--json']);
  assert.equal(info.code, 0, info.err);
  const j = JSON.parse(info.out);
  const svg = fs.readFileSync(path.join(work, 'corpus', 'code-histogram.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /train: \d\.\d{3} bits/);
  assert.ok(fs.existsSync(path.join(work, 'corpus', 'code-histogram.png')));
  const train = j.splits.find((s: { split: string }) => s.split === 'train');
  assert.ok(train.entropyBits > 3 && train.entropyBits < 8, `speech code entropy ${train.entropyBits}`);
});

// Root reads anything, so as root the CLI runs as an unprivileged user to meet a real EACCES;
// that needs the checkout to be reachable by that user (a clone under a private temp dir is not).
const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
const nobodyCanRun =
  process.platform !== 'win32' &&
  spawnSync(
    process.execPath,
    ['-e', `require('fs').accessSync(${JSON.stringify(CLI)}, require('fs').constants.R_OK)`],
    asNobody,
  ).status === 0;

test(
  'an unreadable file is reported with its path and skipped; the rest prepares',
  { skip: nobodyCanRun ? false : 'the checkout is not readable by an unprivileged user' },
  () => {
    const root = tempDir();
    fs.chmodSync(root, 0o777);
    const inp = path.join(root, 'in');
    fs.mkdirSync(inp);
    fs.copyFileSync(path.join(SAMPLES, 'test', 'demo-moreinfo.wav'), path.join(inp, 'ok.wav'));
    fs.copyFileSync(path.join(SAMPLES, 'test', 'vm-forwardoptions.wav'), path.join(inp, 'locked.wav'));
    fs.chmodSync(path.join(inp, 'locked.wav'), 0o000);
    fs.chmodSync(inp, 0o755);
    const r = spawnSync(process.execPath, [CLI, 'prepare', inp, '--out', path.join(root, 'c')], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, CI: '1' },
      ...asNobody,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /decoded 1 file/);
    assert.match(r.stdout, /locked\.wav: permission denied/);
  },
);
