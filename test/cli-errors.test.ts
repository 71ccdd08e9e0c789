import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { loadPipeline } from '../src/cli/pipeline-file.js';
import { diskFullMessage, failureOf } from '../src/cli/options.js';
import { loadModel, ModelFileError, saveModel } from '../src/models/model-files.js';
import { modelPreset } from '../src/models/registry.js';
import { summarizeRun } from '../src/report/run-summary.js';
import { writeReports } from '../src/report/write-reports.js';
import { UserError } from '../src/util/errors.js';
import { CLI, SAMPLES, tempDir } from './helpers.js';
import { anyParams } from './infer-helpers.js';

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const STACK = /\n\s+at /;

function tinyRun(name = 'ct-tiny', root = tempDir('ctspeech-err-')): string {
  const cfg = modelPreset(name);
  saveModel(root, cfg, anyParams(cfg));
  return root;
}

test('bad flag values, unknown options and commands exit 2 with commander’s message; help exits 0', () => {
  const run = tinyRun();
  const cases: [string[], RegExp][] = [
    [['generate', '--run', run, '--count', 'abc'], /--count <n>' argument 'abc' is invalid/],
    [['eval', '--run', run, '--bogus'], /unknown option '--bogus'/],
    [['export'], /required option '--run <dir>' not specified/],
    [['nope'], /unknown command 'nope'/],
  ];
  for (const [args, msg] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.match(r.err, msg, args.join(' '));
  }
  for (const args of [['--help'], ['eval', '--help']]) assert.equal(cli(...args).code, 0, args.join(' '));
  fs.rmSync(run, { recursive: true, force: true });
});

test('pipeline steps name the step, its kind, the field and what it expects', () => {
  const dir = tempDir();
  const file = path.join(dir, 'p.yaml');
  const problems = (steps: string) => {
    fs.writeFileSync(file, `name: p\nworkdir: w\nsteps:\n${steps}`);
    try {
      loadPipeline(file);
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      return e.message;
    }
    return '';
  };
  const train = '  - train: { data: corpus, run: ct }\n';
  assert.match(
    problems(`${train}  - train: { data: corpus }\n`),
    /step 2 \(train\) at steps\.1\.train\.run: missing; expected a string/,
  );
  assert.match(
    problems(`  - train: { data: corpus, run: ct, steps: "ten" }\n`),
    /step 1 \(train\) at steps\.0\.train\.steps: expected an integer > 0, got the string "ten"/,
  );
  assert.match(
    problems(`  - generate: { run: ct, seconds: 0, topP: 2 }\n`),
    /step 1 \(generate\) at steps\.0\.generate\.seconds: expected a number > 0 and <= 3600, got 0\n.*topP: expected a number > 0 and <= 1, got 2/,
  );
  assert.match(
    problems(`  - train:\n    data: corpus\n    run: ct\n`),
    /step 1 \(train\) at steps\.0: data, run are beside "train:" but belong under it: indent them/,
  );
  assert.match(
    problems(`${train}  - fit: { run: ct }\n`),
    /step 2 at steps\.1: each step must be one of prepare, .*report with its known fields; "fit" is not a step kind/,
  );
  assert.match(problems(`  - eval\n`), /step 1 at steps\.0: each step must be one of .*got the string "eval"/);
  assert.match(problems(`  - eval: { run: ct, split: dev }\n`), /split: expected one of "train", "valid", "test"/);
  assert.match(problems(`  - train: { data: corpus, run: ct, stepz: 3 }\n`), /unknown field\(s\) stepz \(known: data/);
  // restart is a train step field: true or false.
  assert.equal(problems(`  - train: { data: corpus, run: ct, restart: true }\n`), '');
  assert.match(
    problems(`  - train: { data: corpus, run: ct, restart: "yes" }\n`),
    /steps\.0\.train\.restart: expected true or false, got the string "yes"/,
  );
  // Variables: --set and --data name only what the file declares.
  fs.writeFileSync(file, 'name: p\nworkdir: w\nvars:\n  budget: "10"\n  seeds: "0"\nsteps:\n  - info: { corpus: c }\n');
  assert.throws(
    () => loadPipeline(file, { minutes: '30' }),
    /--set minutes: .*p\.yaml has no such variable \(its variables: budget, seeds\)/,
  );
  assert.throws(() => loadPipeline(file, { data: 'x' }), /--data: .*has no such variable/);
  assert.equal(loadPipeline(file, { budget: '20' }).name, 'p');
  // The top level too, through the command line.
  fs.writeFileSync(file, 'name: p\nworkdir: w\nsteps: "ten"\n');
  const r = cli('pipeline', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /p\.yaml: steps: expected a list of steps, each one of prepare, .*got the string "ten"/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('non-finite weights are refused at load, naming the tensors: eval and generate exit 2', () => {
  const cfg = modelPreset('ct-tiny');
  const params = anyParams(cfg);
  const [first, second] = [...params.keys()];
  params.get(first)!.data.set([NaN, NaN, NaN], 0);
  params.get(second)!.data[1] = -Infinity;
  const run = tempDir('ctspeech-nan-');
  saveModel(run, cfg, params);
  const size = (k: string) => params.get(k)!.data.length.toLocaleString('en-US');
  const named = new RegExp(
    `non-finite weights \\(NaN or infinity\\) in 2 tensor\\(s\\): ${first.replace(/\./g, '\\.')} \\(3 of ${size(first)}\\), ` +
      `${second.replace(/\./g, '\\.')} \\(1 of ${size(second)}\\)`,
  );
  assert.throws(
    () => loadModel(run),
    (e) => e instanceof ModelFileError && named.test(e.message),
  );
  const clip = path.join(SAMPLES, 'test', 'vm-forwardoptions.wav');
  for (const args of [
    ['eval', '--run', run, '--data', clip],
    ['generate', '--run', run, '--seconds', '0.01'],
  ]) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args[0]}: exit ${r.code}\n${r.out}${r.err}`);
    assert.match(r.err, named, args[0]);
    assert.doesNotMatch(r.err, STACK, args[0]);
  }
  assert.equal(fs.existsSync(path.join(run, 'generated')), false, 'generate wrote nothing');
  fs.rmSync(run, { recursive: true, force: true });
});

test('generate refuses lengths past its limits, naming the flag and the limit', () => {
  const run = tinyRun();
  const prompt = path.join(SAMPLES, 'test', 'vm-newuser.flac');
  const cases: [string[], RegExp][] = [
    [['--seconds', '1e12'], /--seconds.*at most 3600 \(one hour\)/],
    [['--prompt', prompt, '--prompt-seconds', '1e9'], /--prompt-seconds.*at most 3600/],
    [['--count', '1024', '--seconds', '3600'], /1024 continuation\(s\).*1 GiB.*lower --count, --seconds/],
  ];
  for (const [args, msg] of cases) {
    const r = cli('generate', '--run', run, ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.match(r.err, msg, args.join(' '));
    assert.doesNotMatch(r.err, /Invalid typed array length/);
  }
  assert.equal(fs.existsSync(path.join(run, 'onnx')), false, 'refused before any export');
  fs.rmSync(run, { recursive: true, force: true });
});

test('a full disk anywhere in an error chain is one message naming the file, exit 2', () => {
  const enospc = (extra: object = {}) =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', ...extra });
  assert.equal(diskFullMessage(enospc()), 'disk full while writing: free space and rerun');
  assert.equal(
    diskFullMessage(enospc({ path: '/r/onnx/step.onnx.tmp-4242' })),
    'disk full while writing /r/onnx/step.onnx: free space and rerun',
  );
  const wrapped = new UserError('could not save', { cause: enospc({ path: '/r/weights.safetensors' }) });
  assert.deepEqual(failureOf(wrapped), {
    message: 'could not save (disk full while writing /r/weights.safetensors: free space and rerun)',
    exitCode: 2,
  });
  const worded = new UserError('disk full while writing the checkpoint; the last one is intact', {
    cause: enospc({ path: '/r/checkpoint.safetensors' }),
  });
  assert.equal(failureOf(worded).message, 'disk full while writing the checkpoint; the last one is intact');
  const quota = new AggregateError([new Error('other'), Object.assign(new Error('q'), { code: 'EDQUOT' })]);
  assert.match(failureOf(quota).message, /^disk full while writing: free space and rerun$/);
  assert.equal(diskFullMessage(new Error('plain')), null);
  assert.equal(failureOf(new Error('plain')).exitCode, 1);
});

/** A tmpfs of `kb` KiB mounted on a fresh folder, or null (test skipped) where mounting is not allowed. */
function tinyDisk(t: TestContext, kb: number): string | null {
  const dir = tempDir('ctspeech-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
    t.skip('cannot mount a tmpfs here (needs root); the mapping is tested above');
    return null;
  }
}

function unmount(dir: string): void {
  execFileSync('umount', [dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

test('generate and export on a full disk: the message names the file, no stack trace', (t) => {
  const disk = tinyDisk(t, 4);
  if (!disk) return;
  try {
    const run = tinyRun('wavenet-tiny');
    const out = path.join(disk, 'a.wav');
    // Half a second is a 16 KB WAV: more than the 4 KB disk holds.
    const g = cli('generate', '--run', run, '--seconds', '0.5', '--out', out);
    assert.equal(g.code, 2, g.err);
    assert.match(g.err, new RegExp(`disk full while writing ${out.replace(/\./g, '\\.')}: free space and rerun`));
    assert.doesNotMatch(g.err, STACK);
    assert.deepEqual(fs.readdirSync(disk), [], 'no partial file left');
    fs.rmSync(run, { recursive: true, force: true });
  } finally {
    unmount(disk);
  }
  // A run folder with room for its weights but not for its graphs.
  const sized = tinyRun();
  const weights = fs.statSync(path.join(sized, 'weights.safetensors')).size;
  fs.rmSync(sized, { recursive: true, force: true });
  const disk2 = tinyDisk(t, Math.ceil(weights / 4096) * 4 + 12);
  if (!disk2) return;
  try {
    const run = tinyRun('ct-tiny', disk2);
    const e = cli('export', '--run', run);
    assert.equal(e.code, 2, e.err);
    assert.match(e.err, /disk full while writing .*onnx[/\\]segment-b8-\S+\.onnx: free space and rerun/);
    assert.doesNotMatch(e.err, STACK);
  } finally {
    unmount(disk2);
  }
});

test('report marks runs that stopped before their planned steps', async () => {
  const dir = tempDir();
  const cfg = modelPreset('ct-tiny');
  const run = (name: string, planned: number, done: number) => {
    const r = path.join(dir, name);
    fs.mkdirSync(r);
    fs.writeFileSync(path.join(r, 'config.json'), JSON.stringify(cfg));
    fs.writeFileSync(path.join(r, 'train.json'), JSON.stringify({ steps: planned, backend: 'cpu' }));
    const lines = Array.from({ length: done }, (_, k) =>
      JSON.stringify({ step: k + 1, samples: 16 * (k + 1), nll: 5 }),
    );
    fs.writeFileSync(path.join(r, 'metrics.jsonl'), lines.join('\n') + '\n');
    return summarizeRun(name, r, () => ({ model: 'CT', params: '0.04M' }));
  };
  const short = run('short', 300, 120);
  const done = run('done', 50, 50);
  assert.equal(short.plannedSteps, 300);
  const out = path.join(dir, 'report.md');
  await writeReports(out, 'r', [short, done]);
  const md = fs.readFileSync(out, 'utf8');
  const row = (name: string) => md.split('\n').find((l) => l.includes(`\`${name}\``) && l.startsWith('|'))!;
  assert.match(row('short'), /\| 1,920 \(trained 120 of 300 steps\) \|/);
  assert.doesNotMatch(row('done'), /trained/);
  assert.match(md, /1 run\(s\) did not finish training\*\* \(`short`\)/);
  fs.rmSync(dir, { recursive: true, force: true });
});
