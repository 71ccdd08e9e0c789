/**
 * Opens a report page in headless Chromium (Debian's `chromium`, driven by puppeteer-core, which
 * downloads nothing) and says what a reader would find broken: charts that did not draw, audio that
 * does not load, images that do not decode, and any request that left the page's folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser to drive: $CHROMIUM, else the usual install paths; null when there is none. */
export function findChromium(): string | null {
  const env = process.env.CHROMIUM;
  if (env) return fs.existsSync(env) ? env : null;
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

/** What the check reads of an <audio> element (the DOM types are not in this project's lib). */
interface MediaLike {
  duration: number;
  readyState: number;
  error: { code: number } | null;
  getAttribute(name: string): string | null;
  addEventListener(type: string, f: () => void, o: { once: boolean }): void;
  load(): void;
}

export interface PageCheck {
  charts: { id: string; state: string; svgElements: number }[];
  audio: { src: string; duration: number | null; error: string | null }[];
  images: { src: string; width: number }[];
  /** every URL the page asked for */
  requests: string[];
  /** requests outside the page's folder (and not data: URLs) */
  outside: string[];
  consoleErrors: string[];
  /** one line per problem; empty when the page is whole */
  problems: string[];
}

export async function checkPage(html: string, o: { chromium: string; screenshot?: string }): Promise<PageCheck> {
  const folder = pathToFileURL(path.dirname(path.resolve(html)) + path.sep).href;
  const browser = await puppeteer.launch({
    executablePath: o.chromium,
    headless: true,
    // --autoplay-policy lets media load without a user gesture; no sandbox as root in CI containers.
    args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    page.on('request', (r) => void requests.push(r.url()));
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
    page.on('pageerror', (e) => void consoleErrors.push(String(e)));
    // A dialog would block the page's load event; a report never opens one, so it is a problem.
    const dialogs: string[] = [];
    page.on('dialog', (d) => void (dialogs.push(`${d.type()}: ${d.message()}`), d.dismiss()));
    await page.goto(pathToFileURL(path.resolve(html)).href, { waitUntil: 'load', timeout: 60_000 });
    const charts = await page.$$eval('.chart', (els) =>
      els.map((el) => ({
        id: el.id,
        state: (el as unknown as { dataset: Record<string, string> }).dataset.rendered ?? 'not run',
        svgElements: el.querySelectorAll('svg path, svg text, svg rect').length,
      })),
    );
    // Each <audio> preloads its metadata; wait for it (or its error) per element.
    const audio = await page.$$eval('audio', (els) =>
      Promise.all(
        els.map(
          (a) =>
            new Promise<{ src: string; duration: number | null; error: string | null }>((resolve) => {
              const media = a as unknown as MediaLike;
              const done = () =>
                resolve({
                  src: media.getAttribute('src') ?? '',
                  duration: Number.isFinite(media.duration) ? media.duration : null,
                  error: media.error ? `media error ${media.error.code}` : null,
                });
              if (media.readyState >= 1 || media.error) return done();
              media.addEventListener('loadedmetadata', done, { once: true });
              media.addEventListener('error', done, { once: true });
              setTimeout(done, 20_000);
              media.load();
            }),
        ),
      ),
    );
    const images = await page.$$eval('img', (els) =>
      els.map((i) => ({
        src: i.getAttribute('src') ?? '',
        width: (i as unknown as { naturalWidth: number }).naturalWidth,
      })),
    );
    if (o.screenshot) {
      const jpeg = /\.jpe?g$/i.test(o.screenshot);
      await page.screenshot({
        path: o.screenshot as `${string}.png`,
        fullPage: true,
        ...(jpeg ? { type: 'jpeg' as const, quality: 65 } : {}),
      });
    }
    const outside = requests.filter((u) => !u.startsWith('data:') && !u.startsWith(folder));
    const problems = [
      ...charts.filter((c) => c.state !== 'yes' || c.svgElements < 5).map((c) => `chart ${c.id}: ${c.state}`),
      ...audio.filter((a) => !(a.duration! > 0)).map((a) => `audio ${a.src}: ${a.error ?? 'no duration'}`),
      ...images.filter((i) => !(i.width > 0)).map((i) => `image ${i.src} did not decode`),
      ...outside.map((u) => `request outside the page's folder: ${u}`),
      ...audio
        .filter((a, i) => audio.findIndex((b) => b.src === a.src) !== i)
        .map((a) => `audio ${a.src} is played by two players`),
      ...dialogs.map((d) => `the page opened a dialog (${d})`),
      ...consoleErrors.map((e) => `console: ${e}`),
    ];
    return { charts, audio, images, requests, outside, consoleErrors, problems };
  } finally {
    await browser.close();
  }
}
