/**
 * Prompts that start at speech: where the auto rule puts the start on real Asterisk speech (checked
 * against the file's own frame levels), explicit starts cutting exactly those codes, the prompt and
 * real-continuation files beside the output (compared code for code with the source), their
 * spectrograms, the summary and the pipeline's generate.json, and the errors of a bad --prompt-start.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pngjs from 'pngjs';
import YAML from 'yaml';
import { decodeAudio } from '../src/audio/decode.js';
import { muLawDecode, muLawEncode } from '../src/audio/mulaw.js';
import { speechStart } from '../src/audio/speech-start.js';
import { cutPrompt } from '../src/cli/generate-prompt.js';
import { GENERATE_DEFAULTS, type GenerateFlags, runGenerate } from '../src/cli/generate.js';
import { loadPipeline } from '../src/cli/pipeline-file.js';
import { saveModel } from '../src/models/model-files.js';
import { modelPreset } from '../src/models/registry.js';
import { UserError } from '../src/util/errors.js';
import { CLI, SAMPLES, sine, tempDir } from './helpers.js';
import { anyParams } from './infer-helpers.js';

const { PNG } = pngjs;
const RATE = 16000;
const FRAME = 160;
const DEMO = path.join(SAMPLES, 'test', 'demo-moreinfo.wav');
const demo = (await decodeAudio(DEMO, RATE)).samples;
// The file is 16 kHz 16-bit PCM: no resampling, so these are the codes prepare and --prompt see.
const demoCodes = muLawEncode(demo);

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function frameDb(x: Float32Array, f: number): number {
  let s = 0;
  for (let i = f * FRAME; i < (f + 1) * FRAME; i++) s += x[i] * x[i];
  return 10 * Math.log10(s / FRAME);
}

/** The codes of a WAV generate wrote (16-bit PCM of mu-law levels: re-encoding gives the codes back). */
async function wavCodes(file: string): Promise<Uint8Array> {
  return muLawEncode((await decodeAudio(file, RATE)).samples);
}

function tinyRun(): string {
  const dir = tempDir('ctspeech-prompt-');
  const cfg = modelPreset('wavenet-tiny');
  saveModel(dir, cfg, anyParams(cfg));
  return dir;
}

async function quietly<T>(f: () => Promise<T>): Promise<T> {
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = console.error = () => {};
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return await f();
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
  }
}

const flags = (run: string, more: Partial<GenerateFlags>): GenerateFlags => ({
  run,
  seconds: 0.05,
  temperature: 1,
  seed: 0,
  count: 1,
  engine: GENERATE_DEFAULTS.engine,
  device: 'cpu',
  ...more,
});

test('auto start on demo-moreinfo: 1.05 s, where its line silence ends and the first word begins', () => {
  // Its frames sit near -80 dBFS (idle line) until 1.05 s, the 1.05-1.06 s frame rises to -52 dBFS and
  // the 1.06 s frame is speech at -14; the loudest frame is -7.7 dBFS, so the first frame within 40 dB
  // is the one at 1.06 s, and one frame of margin puts the start at 1.05 s = sample 16,800.
  const start = speechStart(demo, RATE);
  assert.ok(Math.abs(start - 16800) <= 3 * FRAME, `start ${start} samples (${start / RATE} s)`);
  assert.equal(start % FRAME, 0, 'on a frame boundary');
  // Independently of the rule: everything before is quiet, speech follows within two frames.
  for (let f = 0; f < start / FRAME; f++) assert.ok(frameDb(demo, f) < -50, `frame ${f} is silence`);
  assert.ok(frameDb(demo, start / FRAME + 1) > -30, 'speech right after the start');
  // The rule on the mu-law codes' levels (what a pipeline passes) puts it at the same frame.
  assert.equal(speechStart(muLawDecode(demoCodes), RATE), start);
});

test('auto start is relative to the file: a quiet copy starts where the loud one does; silence starts at 0', () => {
  const tone = Float32Array.from({ length: RATE }, (_, i) => (i < 8000 ? 0 : 0.5 * Math.sin(i / 5)));
  assert.equal(speechStart(tone, RATE), 49 * FRAME, 'sound from frame 50, one frame of margin');
  assert.equal(
    speechStart(
      tone.map((x) => x * 0.001),
      RATE,
    ),
    49 * FRAME,
    'the same 60 dB lower',
  );
  assert.equal(speechStart(new Float32Array(RATE), RATE), 0);
  const loudFirst = Float32Array.from(sine(RATE, RATE, 300, 0.9));
  assert.equal(speechStart(loudFirst, RATE), 0);
});

test('cutPrompt: an explicit start cuts exactly those codes; the real continuation follows, shorter at the end', () => {
  const src = { codes: demoCodes };
  const a = cutPrompt(src, 'demo', { start: 2, seconds: 0.5, continuation: 1600 });
  assert.equal(a.start, 32000);
  assert.deepEqual(a.prompt, demoCodes.slice(32000, 40000));
  assert.deepEqual(a.real, demoCodes.slice(40000, 41600));
  // From decoded samples the same window (the samples are encoded on the way).
  const b = cutPrompt({ samples: demo }, 'demo', { start: 2, seconds: 0.5, continuation: 1600 });
  assert.deepEqual([b.start, b.prompt, b.real], [a.start, a.prompt, a.real]);
  const n = demoCodes.length;
  const end = cutPrompt(src, 'demo', { start: (n - 1000) / RATE, seconds: 0.05, continuation: 8000 });
  assert.deepEqual(end.real, demoCodes.slice(n - 200), 'the real audio stops at the end of the source');
  const last = cutPrompt(src, 'demo', { start: (n - 1000) / RATE, continuation: 8000 });
  assert.equal(last.prompt.length, 1000, 'no --prompt-seconds: to the end');
  assert.equal(last.real, null, 'nothing follows');
  const auto = cutPrompt(src, 'demo', { seconds: 1, continuation: 10 });
  assert.equal(auto.start, speechStart(demo, RATE), 'auto is the default');
  for (const [start, msg] of [
    [-0.5, /--prompt-start must be seconds >= 0 or auto, got -0.5/],
    [Number.NaN, /--prompt-start must be seconds >= 0 or auto/],
    [20, /--prompt-start 20 s is at or past the end of --prompt demo, which lasts 14\.73 s/],
    [n / RATE, /past the end of --prompt demo, which lasts 14\.73 s/],
  ] as const)
    assert.throws(
      () => cutPrompt(src, 'demo', { start, continuation: 1 }),
      (e: Error) => e instanceof UserError && msg.test(e.message),
    );
});

test('generate --prompt-start --spectrogram: prompt and real files beside numbered outputs, the summary', async () => {
  const run = tinyRun();
  const out = path.join(run, 'o', 'cont.wav');
  const r = cli(
    'generate',
    '--run',
    run,
    '--prompt',
    DEMO,
    '--prompt-start',
    '2',
    '--prompt-seconds',
    '0.5',
    '--seconds',
    '0.1',
    '--count',
    '2',
    '--spectrogram',
    '--json',
    '--out',
    out,
  );
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  const o = (f: string) => path.join(run, 'o', f);
  assert.deepEqual(s.files, [o('cont-1.wav'), o('cont-2.wav')]);
  assert.equal(s.promptStart, 2);
  assert.equal(s.promptLength, 8000);
  assert.equal(s.promptFile, o('cont-prompt.wav'), 'named from the un-numbered stem');
  assert.equal(s.realFile, o('cont-real.wav'));
  const pngs = ['cont-1', 'cont-2', 'cont-prompt', 'cont-real'].map((f) => o(`${f}.spectrogram.png`));
  assert.deepEqual(s.spectrograms, pngs);
  for (const p of pngs) assert.equal(PNG.sync.read(fs.readFileSync(p)).width, 900, p);
  assert.deepEqual(await wavCodes(o('cont-prompt.wav')), demoCodes.slice(32000, 40000), 'the prompt alone');
  assert.deepEqual(await wavCodes(o('cont-real.wav')), demoCodes.slice(40000, 41600), 'what followed, 0.1 s');
  for (const k of [1, 2])
    assert.deepEqual((await wavCodes(o(`cont-${k}.wav`))).subarray(0, 8000), demoCodes.slice(32000, 40000));

  // Default: auto start, no spectrograms.
  const d = cli('generate', '--run', run, '--prompt', DEMO, '--prompt-seconds', '0.2', '--json', '--out', o('d.wav'));
  assert.equal(d.code, 0, d.err);
  const ds = JSON.parse(d.out);
  assert.equal(ds.promptStart, 1.05);
  assert.deepEqual(ds.spectrograms, []);
  assert.deepEqual(await wavCodes(o('d-prompt.wav')), demoCodes.slice(16800, 20000));
  assert.equal(fs.existsSync(o('d.spectrogram.png')), false);
  fs.rmSync(run, { recursive: true, force: true });
});

test('library callers passing codes (the pipeline): start, real file, and no prompt at all', async () => {
  const run = tinyRun();
  const out = path.join(run, 'g', 'c.wav');
  const n = demoCodes.length;
  const s = await quietly(() =>
    runGenerate(flags(run, { prompt: 'corpus/demo', promptCodes: demoCodes, promptStart: (n - 400) / RATE, out })),
  );
  assert.equal(s.promptLength, 400);
  assert.equal(s.realFile, null, 'nothing followed the prompt');
  assert.equal(fs.existsSync(path.join(run, 'g', 'c-real.wav')), false);
  assert.deepEqual(await wavCodes(s.promptFile!), demoCodes.slice(n - 400));
  const none = await quietly(() => runGenerate(flags(run, { out: path.join(run, 'g', 'n.wav'), spectrogram: true })));
  assert.deepEqual(
    [none.promptStart, none.promptFile, none.realFile, none.spectrograms],
    [null, null, null, [path.join(run, 'g', 'n.spectrogram.png')]],
  );
  fs.rmSync(run, { recursive: true, force: true });
});

test('bad --prompt-start: clear errors naming the flag (and the file length), nothing written', async () => {
  const run = tinyRun();
  const out = path.join(run, 'x.wav');
  const parsed: [string, RegExp][] = [
    ['-1', /--prompt-start <s\|auto>' argument '-1' is invalid.*seconds >= 0/],
    ['soon', /--prompt-start <s\|auto>' argument 'soon' is invalid/],
  ];
  for (const [v, msg] of parsed) {
    const r = cli('generate', '--run', run, '--prompt', DEMO, '--prompt-start', v, '--out', out);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, msg);
  }
  const cases: [Partial<GenerateFlags>, RegExp][] = [
    [
      { prompt: DEMO, promptStart: 15 },
      /--prompt-start 15 s is at or past the end of --prompt .*demo-moreinfo\.wav, .*14\.73 s/,
    ],
    [{ prompt: 'corpus/x', promptCodes: demoCodes.slice(0, 800), promptStart: 0.05 }, /corpus\/x, which lasts 0\.05 s/],
    [{ promptStart: 1 }, /--prompt-start needs --prompt/],
    [{ prompt: DEMO, promptStart: -2 }, /--prompt-start must be seconds >= 0/],
  ];
  for (const [more, msg] of cases)
    await assert.rejects(
      quietly(() => runGenerate(flags(run, { ...more, out }))),
      (e: Error) => e instanceof UserError && msg.test(e.message),
    );
  assert.equal(fs.existsSync(out), false);
  assert.equal(fs.existsSync(path.join(run, 'x-prompt.wav')), false);
  fs.rmSync(run, { recursive: true, force: true });
});

test('pipeline generate step: promptStart and spectrograms (on by default), paths in generate.json relative', () => {
  const work = tempDir('ctspeech-prompt-pipe-');
  const src = path.join(work, 'audio', 'test');
  fs.mkdirSync(src, { recursive: true });
  fs.copyFileSync(DEMO, path.join(src, 'demo-moreinfo.wav'));
  const run = path.join(work, 'wn');
  const cfg = modelPreset('wavenet-tiny');
  saveModel(run, cfg, anyParams(cfg));
  const step = { run: 'wn', prompt: 'corpus:test', corpus: 'corpus', promptSeconds: 0.25, seconds: 0.05 };
  const doc = {
    name: 'prompt-start',
    workdir: work,
    steps: [
      { prepare: { inputs: [path.join(work, 'audio')], out: 'corpus' } },
      { generate: { ...step, promptStart: 3 } },
    ],
  };
  const file = path.join(work, 'p.yaml');
  fs.writeFileSync(file, YAML.stringify(doc));
  const r = spawnSync(process.execPath, [CLI, 'pipeline', file], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const g = JSON.parse(fs.readFileSync(path.join(run, 'generate.json'), 'utf8'));
  assert.equal(g.promptStart, 3);
  assert.deepEqual(g.files, ['generated/continuation.wav']);
  assert.equal(g.promptFile, 'generated/continuation-prompt.wav');
  assert.equal(g.realFile, 'generated/continuation-real.wav');
  assert.deepEqual(
    g.spectrograms,
    ['continuation', 'continuation-prompt', 'continuation-real'].map((f) => `generated/${f}.spectrogram.png`),
  );
  for (const f of [...g.spectrograms, g.promptFile]) assert.ok(fs.existsSync(path.join(run, f)), f);
  assert.equal(g.promptLength, 4000);
  // The schema: auto or seconds >= 0, and spectrogram a boolean.
  const problems = (more: object) => {
    fs.writeFileSync(file, YAML.stringify({ ...doc, steps: [{ generate: { ...step, ...more } }] }));
    try {
      loadPipeline(file);
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(problems({ promptStart: 'auto', spectrogram: false }), '');
  assert.match(problems({ promptStart: -1 }), /promptStart: expected seconds >= 0 into the prompt file, or "auto"/);
  assert.match(problems({ promptStart: 'soon' }), /promptStart/);
  assert.match(problems({ spectrogram: 'yes' }), /spectrogram: expected true or false/);
  fs.rmSync(work, { recursive: true, force: true });
});
