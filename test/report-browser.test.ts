import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runReport } from '../src/cli/report.js';
import { checkPage, findChromium } from './browser-page.js';

// Real trained runs committed with the repository: two models, seeds 0, with attention, curves and
// generated audio (prompt, continuation and the real audio that followed the prompt).
const RESULTS = 'results/speech-compare-cpu';
const RUNS = ['ct-seed0', 'wavenet-seed0'].map((r) => path.join(RESULTS, r));

const chromium = findChromium();
// .ci/run sets CTSPEECH_REQUIRE_BROWSER: there a missing browser fails the test instead of skipping it.
if (!chromium && process.env.CTSPEECH_REQUIRE_BROWSER)
  throw new Error('CTSPEECH_REQUIRE_BROWSER is set but no Chromium was found (install "chromium" or set CHROMIUM)');
const skip = chromium ? false : 'no Chromium (install Debian\'s "chromium" or set CHROMIUM=/path/to/chrome)';

async function report(t: TestContext): Promise<{ dir: string; html: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctspeech-report-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const html = await runReport(RUNS, { out: dir, title: 'browser test <report>' });
  return { dir, html };
}

test(
  'report.html in headless Chromium: every chart draws, every clip loads with its duration, nothing leaves the folder',
  { skip },
  async (t) => {
    const { dir, html } = await report(t);
    const shot = path.join(dir, 'page.png');
    const r = await checkPage(html, { chromium: chromium!, screenshot: shot });
    assert.deepEqual(r.problems, []);
    // valid NLL, test NLL, the CT's attention profile, two runs' training curves
    assert.equal(r.charts.length, 5, JSON.stringify(r.charts));
    // prompt, continuation and real audio for each of the two runs
    assert.equal(r.audio.length, 6, JSON.stringify(r.audio));
    for (const a of r.audio) {
      const want = /continuation|real/.test(a.src) ? 2 : 1;
      assert.ok(Math.abs(a.duration! - want) < 0.01, `${a.src}: ${a.duration} s, expected ${want} s`);
    }
    assert.equal(r.images.length, 6, 'one spectrogram per clip');
    assert.ok(r.requests.some((u) => u.endsWith('.wav')) && r.requests.some((u) => u.endsWith('.png')));
    assert.deepEqual(r.outside, []);
    const page = fs.readFileSync(html, 'utf8');
    assert.ok(page.includes('browser test &lt;report&gt;'), 'title escaped');
    assert.ok(!/<script[^>]+src=/.test(page), 'no external script');
    assert.ok(fs.statSync(shot).size > 10_000, 'screenshot written');
  },
);

test(
  'the browser check fails a broken page: a missing clip, a chart that cannot draw, a request outside, ' +
    'one clip in two players, a dialog, a missing spectrogram',
  { skip },
  async (t) => {
    const { dir, html } = await report(t);
    fs.rmSync(path.join(dir, 'media', 'ct-seed0', 'real.wav'));
    fs.rmSync(path.join(dir, 'media', 'wavenet-seed0', 'real.png'));
    const page = fs
      .readFileSync(html, 'utf8')
      .replace(
        '<script type="application/json" id="chart-1-option">{',
        '<script type="application/json" id="chart-1-option">{,',
      )
      .replace('<h1>', '<img src="https://example.invalid/tracker.png"><script>alert("x")</script><h1>')
      .replace('src="media/wavenet-seed0/prompt.wav"', 'src="media/wavenet-seed0/continuation.wav"');
    fs.writeFileSync(html, page);
    const r = await checkPage(html, { chromium: chromium! });
    const has = (re: RegExp) => r.problems.some((p) => re.test(p));
    assert.ok(has(/^audio media\/ct-seed0\/real\.wav/), r.problems.join('\n'));
    assert.ok(has(/^chart chart-1: error/), r.problems.join('\n'));
    assert.ok(has(/^request outside the page's folder: https:\/\/example\.invalid/), r.problems.join('\n'));
    assert.ok(has(/^audio media\/wavenet-seed0\/continuation\.wav is played by two players/), r.problems.join('\n'));
    assert.ok(has(/^the page opened a dialog \(alert: x\)/), r.problems.join('\n'));
    assert.ok(has(/^image media\/wavenet-seed0\/real\.png did not decode/), r.problems.join('\n'));
    assert.ok(!has(/chart-0/), 'the other charts still draw');
  },
);
