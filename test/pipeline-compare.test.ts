import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, REPO, tempDir } from './helpers.js';

const LN2 = Math.log(2);

function readJsonl(file: string): Record<string, number>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The first table of a Markdown text as objects keyed by column header. */
function reportTable(md: string): Record<string, string>[] {
  const all = md.split('\n');
  const start = all.findIndex((l) => l.startsWith('| '));
  const end = all.findIndex((l, i) => i > start && !l.startsWith('|'));
  const lines = all.slice(start, end < 0 ? undefined : end);
  const head = lines[0]
    .split('|')
    .slice(1, -1)
    .map((s) => s.trim());
  return lines
    .slice(1)
    .filter((l) => l.includes('`'))
    .map((l) =>
      Object.fromEntries(
        l
          .split('|')
          .slice(1, -1)
          .map((c, i) => [head[i], c.trim()]),
      ),
    );
}

const RUNS = ['ct-seed0', 'ct-seed1', 'txl-seed0', 'txl-seed1', 'wavenet-seed0', 'wavenet-seed1'];

test(
  'speech-compare-cpu.yaml at tiny scale with two seeds: ' +
    'runs end to end, resumes, and its report matches the runs',
  () => {
    const work = tempDir('ctspeech-compare-');
    const args = [
      CLI,
      'pipeline',
      path.join(REPO, 'pipelines', 'speech-compare-cpu.yaml'),
      '--data',
      path.join(REPO, 'samples', 'speech'),
      '--workdir',
      work,
      '--set',
      'ct_model=ct-tiny',
      '--set',
      'txl_model=txl-tiny',
      '--set',
      'wavenet_model=wavenet-tiny',
      // 4 steps of 128 samples for every model: ct/txl-tiny 8 x 16, wavenet-tiny 2 x 64.
      '--set',
      'seeds=0,1',
      '--set',
      'budget=512',
      '--set',
      'warmup=1',
      '--set',
      'valid_every=2',
      '--set',
      'seconds=0.05',
      '--set',
      'test_files=2',
    ];
    const first = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, CI: '1' }, cwd: REPO });
    assert.equal(first.status, 0, first.stderr + first.stdout);

    const md = fs.readFileSync(path.join(work, 'report.md'), 'utf8');
    const [overSeeds, everyRun] = md.split('## Every run');
    const rows = reportTable(everyRun);
    assert.deepEqual(
      rows.map((r) => r.run.replace(/`/g, '')),
      RUNS,
    );
    for (const row of rows) {
      const run = path.join(work, row.run.replace(/`/g, ''));
      const metrics = readJsonl(path.join(run, 'metrics.jsonl'));
      const steps = metrics.filter((m) => m.nll !== undefined);
      const valid = metrics.filter((m) => m.valid_nll !== undefined);
      assert.equal(steps.length, 4, `${row.run}: 4 steps of the 512-sample budget`);
      assert.equal(Number(row['samples trained'].replace(/,/g, '')), steps[steps.length - 1].samples);
      assert.equal(steps[steps.length - 1].samples, 512, 'the same training samples for every model');
      assert.equal(row['valid NLL (nats)'], valid[valid.length - 1].valid_nll.toFixed(4));
      assert.equal(row['valid NLL (bits)'], (valid[valid.length - 1].valid_nll / LN2).toFixed(4));
      const ev = JSON.parse(fs.readFileSync(path.join(run, 'eval-test.json'), 'utf8'));
      assert.equal(ev.files.length, 2, 'the same two test files for every model');
      assert.equal(row['test NLL (nats)'], ev.nats.toFixed(4));
      assert.equal(row['test NLL (bits)'], ev.bits.toFixed(4));
      assert.equal(row['unigram (bits)'], ev.unigramBits.toFixed(3));
      const gen = JSON.parse(fs.readFileSync(path.join(run, 'generate.json'), 'utf8'));
      assert.equal(row['generation RTF'], gen.realTimeFactor.toFixed(1));
      assert.equal(
        gen.files[0],
        'generated/continuation.wav',
        'generate.json names its WAV relative to the run folder',
      );
      assert.ok(fs.existsSync(path.join(run, gen.files[0])), `${row.run}: generated WAV written`);
      const trained = JSON.parse(fs.readFileSync(path.join(run, 'train.json'), 'utf8'));
      assert.equal(trained.corpus, '../corpus', 'train.json names the corpus relative to the run folder');
      assert.equal(
        row['trained on'],
        trained.engine === 'onnxruntime' ? 'onnxruntime' : `tfjs-${trained.backend}`,
        'the engine that trained it, not the tfjs backend every process loads',
      );
      assert.equal(
        trained.seed,
        Number(/seed(\d+)$/.exec(row.run.replace(/`/g, ''))![1]),
        'each seed run trains with its seed',
      );
      const runName = row.run.replace(/`/g, '');
      assert.match(md, new RegExp(`\\]\\(media/${runName}/continuation\\.wav\\)`));
      // The report's clip is the generated file after its prompt, sample for sample (to the 1 LSB a
      // 16-bit -> float -> 16-bit round trip may move).
      const pcm = (f: string) => {
        const b = fs.readFileSync(f);
        return new Int16Array(b.buffer.slice(b.byteOffset + 44, b.byteOffset + b.length));
      };
      const whole = pcm(path.join(run, gen.files[0]));
      const clip = pcm(path.join(work, 'media', runName, 'continuation.wav'));
      assert.equal(clip.length, gen.continuationSamples);
      assert.ok(
        clip.every((v, i) => Math.abs(v - whole[gen.promptLength + i]!) <= 1),
        `${runName}: clip differs`,
      );
    }
    // Seeds differ: not the same weights twice.
    assert.notEqual(rows[0]['test NLL (nats)'], rows[1]['test NLL (nats)'], 'two seeds give two different models');
    // The same test files, in the same order, for every run.
    const fileLists = rows.map((r) =>
      JSON.parse(fs.readFileSync(path.join(work, r.run.replace(/`/g, ''), 'eval-test.json'), 'utf8')).files.map(
        (f: { path: string }) => f.path,
      ),
    );
    for (const list of fileLists) assert.deepEqual(list, fileLists[0]);

    // The seed table: each model's mean and sample standard deviation of its runs' test NLL.
    const groups = reportTable(overSeeds);
    assert.deepEqual(
      groups.map((g) => g.runs.replace(/`/g, '')),
      ['ct', 'txl', 'wavenet'],
    );
    for (const [k, g] of groups.entries()) {
      const bits = [rows[2 * k], rows[2 * k + 1]].map(
        (r) => JSON.parse(fs.readFileSync(path.join(work, r.run.replace(/`/g, ''), 'eval-test.json'), 'utf8')).bits,
      );
      const mean = (bits[0] + bits[1]) / 2;
      const sd = Math.abs(bits[0] - bits[1]) / Math.SQRT2;
      assert.equal(g.seeds, '0, 1');
      assert.equal(
        g['test NLL (bits), mean ± sd (n, min–max)'],
        `${mean.toFixed(3)} ± ${sd.toFixed(3)} ` +
          `(n = 2, ${Math.min(...bits).toFixed(3)}–${Math.max(...bits).toFixed(3)})`,
      );
    }
    assert.match(
      md,
      new RegExp(
        /Lowest mean test NLL: (ct|txl|wavenet)\*\* at \d\.\d{3} bits per sample; /.source +
          /\w+ \+\d\.\d{3} bits \(\d+\.\d standard errors: /.source,
      ),
    );

    // Attention: the mean over the CT's seeds.
    const atts = ['ct-seed0', 'ct-seed1'].map((r) =>
      JSON.parse(fs.readFileSync(path.join(work, r, 'attention.json'), 'utf8')),
    );
    for (const att of atts) {
      const mass = att.regions.reduce((a: number, r: { mass: number }) => a + r.mass, 0);
      assert.ok(Math.abs(mass - 1) < 1e-4, `attention masses sum to ${mass}`);
    }
    atts[0].regions.forEach((r: { name: string; slots: number; mass: number }, k: number) => {
      const mean = (r.mass + atts[1].regions[k].mass) / 2;
      assert.match(md, new RegExp(`\\| ${r.name} \\| ${r.slots} \\| ${(100 * mean).toFixed(1)}% \\|`));
    });
    for (const png of ['valid-nll.png', 'nll-comparison.png', 'ct-seed0/attention.png', 'media/ct-seed0/attention.png'])
      assert.ok(fs.statSync(path.join(work, png)).size > 1000, png);

    // Rerun: the finished models are not retrained (their metrics are untouched), the report is rewritten.
    const before = fs.readFileSync(path.join(work, 'ct-seed1', 'metrics.jsonl'), 'utf8');
    const again = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, CI: '1' }, cwd: REPO });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(fs.readFileSync(path.join(work, 'ct-seed1', 'metrics.jsonl'), 'utf8'), before);
    assert.doesNotMatch(again.stdout + again.stderr, /train: \d+% 1\//, 'no training step was run again');
    fs.rmSync(work, { recursive: true, force: true });
  },
);
