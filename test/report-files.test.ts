/**
 * The report against run folders as they come: hostile or broken JSON, runs whose names collide,
 * reruns into the same folder, continuation-only and empty clips. Built from a real committed run.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runReport, summarizeRunFolders } from '../src/cli/report.js';
import { UsageError } from '../src/cli/options.js';

const RUN = 'results/speech-compare-cpu/ct-seed0';

function scratch(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-report-files-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of the committed run at `dir/name`, with `edit` applied to its JSON files. */
function runCopy(dir: string, name: string, edit: Record<string, (j: Record<string, unknown>) => unknown> = {}) {
  const run = path.join(dir, name);
  fs.cpSync(RUN, run, { recursive: true });
  for (const [file, f] of Object.entries(edit)) {
    const p = path.join(run, file);
    fs.writeFileSync(p, JSON.stringify(f(JSON.parse(fs.readFileSync(p, 'utf8')))));
  }
  return run;
}

async function quietly<T>(f: () => Promise<T>): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const [warn, log] = [console.warn, console.log];
  console.warn = (s: string) => void warnings.push(s);
  console.log = () => {};
  try {
    return { value: await f(), warnings };
  } finally {
    [console.warn, console.log] = [warn, log];
  }
}

const pcm16 = (file: string) => {
  const b = fs.readFileSync(file);
  return new Int16Array(b.buffer.slice(b.byteOffset + 44, b.byteOffset + b.length));
};

test('hostile or malformed run files are left out with a warning, never printed unchecked', async (t) => {
  const dir = scratch(t);
  const run = runCopy(dir, 'ct', {
    'attention.json': (j) => ({ ...j, counted: '<img src=x onerror=alert(1)>' }),
    'eval-test.json': (j) => ({ ...j, nats: 'x' }),
    'generate.json': (j) => ({ ...j, files: [1] }),
  });
  const { value: html, warnings } = await quietly(() => runReport([run], { out: path.join(dir, 'out'), title: 't' }));
  const page = fs.readFileSync(html, 'utf8');
  assert.ok(!page.includes('<img src=x'), 'nothing from the run reaches the page unescaped');
  for (const f of ['attention.json', 'eval-test.json', 'generate.json'])
    assert.ok(
      warnings.some((w) => w.includes(f) && /malformed/.test(w)),
      `${f} reported: ${warnings.join(' | ')}`,
    );
  assert.ok(!page.includes('<audio'), 'no generation section without a valid generate.json');
  assert.match(fs.readFileSync(path.join(dir, 'out', 'report.md'), 'utf8'), /\| – \| – \|/, 'test NLL shown as –');
});

test('runs whose names make the same folder get their own media; the same run twice is refused', async (t) => {
  const dir = scratch(t);
  const a = runCopy(dir, 'ct v1');
  const b = runCopy(dir, 'ct_v1', { 'generate.json': (j) => ({ ...j, realFile: null }) });
  const out = path.join(dir, 'out');
  const { value: html } = await quietly(() => runReport([a, b], { out, title: 't' }));
  const media = fs.readdirSync(path.join(out, 'media')).sort();
  assert.deepEqual(media, ['ct_v1', 'ct_v1-2']);
  assert.ok(fs.existsSync(path.join(out, 'media', 'ct_v1', 'real.wav')), 'the first run keeps its real clip');
  assert.ok(!fs.existsSync(path.join(out, 'media', 'ct_v1-2', 'real.wav')), 'the second has none');
  const srcs = [...fs.readFileSync(html, 'utf8').matchAll(/<audio [^>]*src="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(srcs).size, srcs.length, `every player has its own clip: ${srcs}`);
  assert.throws(() => summarizeRunFolders([a, path.join(a, '.')]), UsageError);
});

test('a rerun into the same folder replaces media whole; clips are copied sample for sample', async (t) => {
  const dir = scratch(t);
  const out = path.join(dir, 'out');
  const first = runCopy(dir, 'first');
  await quietly(() => runReport([first], { out, title: 't' }));
  assert.ok(fs.existsSync(path.join(out, 'media', 'first', 'prompt.wav')));
  const second = runCopy(dir, 'second');
  await quietly(() => runReport([second], { out, title: 't' }));
  assert.deepEqual(fs.readdirSync(path.join(out, 'media')), ['second'], 'no media of the earlier report');
  assert.deepEqual(
    fs.readdirSync(out).filter((f) => f.startsWith('media.')),
    [],
    'no staging folder left',
  );
  // Whole files are byte copies; the continuation is the generated file after its prompt, exactly.
  const gen = JSON.parse(fs.readFileSync(path.join(second, 'generate.json'), 'utf8'));
  const clip = (k: string) => path.join(out, 'media', 'second', `${k}.wav`);
  assert.deepEqual(fs.readFileSync(clip('real')), fs.readFileSync(path.join(second, gen.realFile)));
  assert.deepEqual(fs.readFileSync(clip('prompt')), fs.readFileSync(path.join(second, gen.promptFile)));
  assert.deepEqual(pcm16(clip('continuation')), pcm16(path.join(second, gen.files[0])).subarray(gen.promptLength));
});

test('a continuation-only file is the continuation; an empty clip is left out, the others stay', async (t) => {
  const dir = scratch(t);
  const run = runCopy(dir, 'ct');
  const gen = JSON.parse(fs.readFileSync(path.join(run, 'generate.json'), 'utf8'));
  // Rewrite the generated file as its continuation alone, as --continuation-only writes it.
  const whole = fs.readFileSync(path.join(run, gen.files[0]));
  const cont = Buffer.concat([whole.subarray(0, 44), whole.subarray(44 + 2 * gen.promptLength)]);
  cont.writeUInt32LE(cont.length - 8, 4);
  cont.writeUInt32LE(cont.length - 44, 40);
  fs.writeFileSync(path.join(run, gen.files[0]), cont);
  fs.writeFileSync(path.join(run, 'generate.json'), JSON.stringify({ ...gen, continuationOnly: true }));
  const real = path.join(run, gen.realFile);
  const header = fs.readFileSync(real).subarray(0, 44);
  header.writeUInt32LE(36, 4);
  header.writeUInt32LE(0, 40);
  fs.writeFileSync(real, header); // a WAV with no samples
  const out = path.join(dir, 'out');
  const { warnings } = await quietly(() => runReport([run], { out, title: 't' }));
  assert.deepEqual(fs.readFileSync(path.join(out, 'media', 'ct', 'continuation.wav')), cont);
  assert.ok(fs.existsSync(path.join(out, 'media', 'ct', 'prompt.wav')), 'the prompt clip stays');
  assert.ok(!fs.existsSync(path.join(out, 'media', 'ct', 'real.wav')));
  assert.ok(
    warnings.some((w) => /the real of ct is left out/.test(w)),
    warnings.join(' | '),
  );
});
