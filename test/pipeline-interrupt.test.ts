import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { smallCorpus } from './corpus-helpers.js';
import { CLI, REPO, tempDir } from './helpers.js';

const trainSteps = (run: string) =>
  fs.existsSync(path.join(run, 'metrics.jsonl'))
    ? fs
        .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .flatMap((l) => {
          try {
            const m = JSON.parse(l);
            return m.nll !== undefined ? [m.step as number] : [];
          } catch {
            return [];
          }
        })
    : [];

test('Ctrl-C in a pipeline train step stops the pipeline (exit 130) after a clean save; a rerun ends', async (t) => {
  const corpus = await smallCorpus();
  const work = tempDir('ctspeech-interrupt-');
  const file = path.join(work, 'p.yaml');
  fs.writeFileSync(
    file,
    [
      'name: interrupt',
      `workdir: ${JSON.stringify(work)}`,
      'steps:',
      '  - train:',
      `      data: ${JSON.stringify(corpus)}`,
      '      model: ct-tiny',
      '      run: ct',
      '      steps: 40',
      '      batch: 2',
      '      warmup: 2',
      '      validEvery: 20',
      '      validSamples: 2000',
      '      checkpointEvery: 10',
      '  - eval: {run: ct, split: valid, limitFiles: 1, engine: tfjs}',
      '  - report: {runs: [ct], out: report.md}',
      '',
    ].join('\n'),
  );
  const run = path.join(work, 'ct');
  const env = { ...process.env, CI: '1' };
  const child = spawn(process.execPath, [CLI, 'pipeline', file], { cwd: REPO, env });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let out = '';
  child.stdout.on('data', (d) => ((stdout += d), (out += d)));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  while (!(stdout.includes('== step 1/3: train') && trainSteps(run).length >= 3)) {
    if (gone) assert.fail(`the pipeline ended before its train step was under way:\n${out}`);
    await new Promise((r) => setTimeout(r, 30));
  }
  child.kill('SIGINT');
  assert.equal(await exited, 130, out);
  assert.match(out, /SIGINT during step 1\/3 \(train .*ct\): training stopped at step \d+ of 40, checkpoint saved/);
  assert.match(out, /the 2 later step\(s\) did not run\. Rerun the same command to resume: ctspeech pipeline /);
  assert.doesNotMatch(stdout, /== step 2\/3/, 'no later step started');
  assert.ok(!fs.existsSync(path.join(run, 'eval-valid.json')), 'no evaluation of a half-trained model');
  assert.ok(!fs.existsSync(path.join(work, 'report.md')), 'no report of a half-trained model');
  const saved = (loadCheckpoint(path.join(run, 'checkpoint.safetensors')).state as { step: number }).step;
  const steps = trainSteps(run);
  assert.ok(saved < 40, `stopped early (step ${saved})`);
  assert.equal(saved, steps[steps.length - 1], 'the checkpoint holds the last logged step: a clean save');

  const again = spawnSync(process.execPath, [CLI, 'pipeline', file], { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, new RegExp(`resumed from step ${saved}`));
  assert.deepEqual(
    trainSteps(run),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  assert.ok(fs.existsSync(path.join(run, 'eval-valid.json')));
  assert.ok(fs.existsSync(path.join(work, 'report.md')));
  fs.rmSync(work, { recursive: true, force: true });
});
