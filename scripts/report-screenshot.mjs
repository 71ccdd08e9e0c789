#!/usr/bin/env node
// Checks a report page in headless Chromium (charts drawn, audio loaded, nothing fetched from
// outside its folder) and saves a full-page screenshot: .jpg (smaller, for committing) or .png.
// Usage: node scripts/report-screenshot.mjs <report.html> <out.jpg|out.png>   (after `npm run build`)
import { checkPage, findChromium } from '../dist/test/browser-page.js';

const [html, out] = process.argv.slice(2);
if (!html || !out || !/\.(jpe?g|png)$/i.test(out)) {
  console.error('usage: node scripts/report-screenshot.mjs <report.html> <out.jpg|out.png>');
  process.exit(2);
}
const chromium = findChromium();
if (!chromium) {
  console.error("no Chromium: install Debian's chromium package or set CHROMIUM=/path/to/chrome");
  process.exit(2);
}
const r = await checkPage(html, { chromium, screenshot: out });
console.log(
  `${r.charts.length} charts, ${r.audio.length} audio clips, ${r.images.length} images, ` +
    `${r.requests.length} requests (${r.outside.length} outside the folder); screenshot: ${out}`,
);
for (const p of r.problems) console.log(`problem: ${p}`);
process.exit(r.problems.length ? 1 : 0);
