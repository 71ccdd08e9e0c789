import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawDecode, muLawEncode } from '../src/audio/mulaw.js';
import { saveModel } from '../src/models/model-files.js';
import { modelPreset } from '../src/models/registry.js';
import { CLI, SAMPLES, tempDir } from './helpers.js';
import { anyParams } from './infer-helpers.js';

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function tinyRun(name: string): string {
  const dir = tempDir('ctspeech-gen-');
  const cfg = modelPreset(name);
  saveModel(dir, cfg, anyParams(cfg));
  return dir;
}

const PROMPT = path.join(SAMPLES, 'test', 'vm-newuser.flac');

for (const name of ['ct-tiny', 'wavenet-tiny']) {
  test(`ctspeech generate (${name}): seeded, batched, greedy at temperature 0, prompt kept in the output`, async () => {
    const run = tinyRun(name);
    const out = (f: string) => path.join(run, 'out', f);
    const a = cli('generate', '--run', run, '--seconds', '0.05', '--seed', '3', '--count', '3', '--out', out('a.wav'));
    assert.equal(a.code, 0, a.err);
    assert.match(a.out, /real-time factor/);
    const b = cli('generate', '--run', run, '--seconds', '0.05', '--seed', '3', '--count', '3', '--out', out('b.wav'));
    assert.equal(b.code, 0, b.err);
    for (const k of [1, 2, 3])
      assert.deepEqual(fs.readFileSync(out(`a-${k}.wav`)), fs.readFileSync(out(`b-${k}.wav`)), `row ${k} reproducible`);
    assert.notDeepEqual(fs.readFileSync(out('a-1.wav')), fs.readFileSync(out('a-2.wav')), 'rows of a batch differ');
    const c = cli('generate', '--run', run, '--seconds', '0.05', '--seed', '4', '--out', out('c.wav'));
    assert.equal(c.code, 0, c.err);
    assert.notDeepEqual(fs.readFileSync(out('c.wav')), fs.readFileSync(out('a-1.wav')), 'another seed, other audio');
    // Greedy: the seed no longer matters.
    for (const seed of ['1', '2'])
      assert.equal(
        cli(
          'generate',
          '--run',
          run,
          '--seconds',
          '0.05',
          '--temperature',
          '0',
          '--seed',
          seed,
          '--out',
          out(`g${seed}.wav`),
        ).code,
        0,
      );
    assert.deepEqual(fs.readFileSync(out('g1.wav')), fs.readFileSync(out('g2.wav')));

    // The prompt's first 0.3 s (--prompt-start 0; the default skips its leading silence), mu-law
    // quantised, opens the output; --continuation-only drops it.
    const p = cli(
      'generate',
      '--run',
      run,
      '--prompt',
      PROMPT,
      '--prompt-start',
      '0',
      '--prompt-seconds',
      '0.3',
      '--seconds',
      '0.05',
      '--out',
      out('p.wav'),
      '--json',
    );
    assert.equal(p.code, 0, p.err);
    const summary = JSON.parse(p.out);
    assert.equal(summary.promptLength, 4800);
    assert.equal(summary.continuationSamples, 800);
    const got = (await decodeAudio(out('p.wav'), 16000)).samples;
    assert.equal(got.length, 5600);
    const expected = muLawDecode(muLawEncode((await decodeAudio(PROMPT, 16000)).samples.subarray(0, 4800)));
    let worst = 0;
    for (let i = 0; i < 4800; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    assert.ok(worst <= 1.5 / 32768, `prompt round trip off by ${worst}`);
    assert.equal(
      cli(
        'generate',
        '--run',
        run,
        '--prompt',
        PROMPT,
        '--prompt-seconds',
        '0.3',
        '--seconds',
        '0.05',
        '--continuation-only',
        '--out',
        out('q.wav'),
      ).code,
      0,
    );
    assert.equal((await decodeAudio(out('q.wav'), 16000)).samples.length, 800);
    fs.rmSync(run, { recursive: true, force: true });
  });
}

test('ctspeech generate: bad inputs are clear errors that name the problem, and write nothing', () => {
  const run = tinyRun('txl-tiny');
  const junk = path.join(run, 'junk.wav');
  fs.writeFileSync(junk, 'this is not audio at all');
  const out = path.join(run, 'x.wav');
  const cases: [string[], RegExp][] = [
    [['--seconds', '0'], /--seconds/],
    [['--seconds', '-1'], /--seconds/],
    [['--seconds', 'abc'], /--seconds/],
    [['--temperature', '-1'], /--temperature/],
    [['--top-k', '0'], /--top-k/],
    [['--top-p', '1.5'], /--top-p/],
    [['--prompt', junk], /junk\.wav/],
    [['--prompt', path.join(run, 'missing.flac')], /missing\.flac/],
    [['--engine', 'torch'], /--engine/],
    [['--device', 'tpu'], /--device/],
    [['--device', 'cuda'], /CUDA/],
    [['--out', path.join(run, 'x.mp3')], /--out/],
  ];
  for (const [args, msg] of cases) {
    const r = cli('generate', '--run', run, '--out', out, ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.match(r.err, msg, args.join(' '));
    assert.equal(fs.existsSync(out), false, `${args.join(' ')} wrote output`);
  }
  const none = cli('generate', '--run', path.join(run, 'nope'));
  assert.equal(none.code, 2);
  assert.match(none.err, /nope.*does not exist/);
  fs.rmSync(run, { recursive: true, force: true });
});

test('ctspeech export writes every graph, checked clean, and reuses them when up to date', () => {
  const run = tinyRun('ct-tiny');
  const a = cli('export', '--run', run, '--batch', '1,2');
  assert.equal(a.code, 0, a.err);
  for (const kind of ['segment', 'step', 'roll', 'keys']) assert.match(a.out, new RegExp(`${kind}-b1`));
  assert.doesNotMatch(a.out, /\bup to date\b/);
  const graphs = fs.readdirSync(path.join(run, 'onnx')).filter((f) => f.endsWith('.onnx'));
  assert.equal(graphs.length, 9); // eval segment b8 + 4 graphs x 2 batch sizes
  assert.equal((a.out.match(/ clean/g) ?? []).length, 9);
  const b = cli('export', '--run', run, '--batch', '1,2');
  assert.equal((b.out.match(/up to date/g) ?? []).length, 9);
  assert.equal(cli('export', '--run', run, '--batch', '0').code, 2);
  fs.rmSync(run, { recursive: true, force: true });
});
