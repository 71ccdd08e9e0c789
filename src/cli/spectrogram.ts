import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import {
  readForSpectrogram,
  spectrogramPathFor,
  spectrogramPng,
  SPECTROGRAM_MAX_HZ,
  SPECTROGRAM_RANGE_DB,
} from '../audio/spectrogram.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from './options.js';

export interface SpectrogramFlags {
  out?: string;
  title?: string;
}

export function registerSpectrogram(program: Command): void {
  program
    .command('spectrogram')
    .summary('draw an audio file as a spectrogram PNG (time x frequency, colour = level)')
    .description(
      'Draw how the energy of an audio file spreads over frequency and time: x is time in seconds, ' +
        `y is frequency from 0 to ${SPECTROGRAM_MAX_HZ / 1000} kHz (or the file's Nyquist frequency ` +
        'if lower), colour is level in dB, where 0 dB is a full-scale sine, over ' +
        `${SPECTROGRAM_RANGE_DB} dB below the loudest point. Each column is a 25 ms Hann window, taken ` +
        'every 10 ms (the usual speech analysis frames): voiced speech shows as stacks of horizontal ' +
        'harmonics, fricatives as high-frequency noise, silence as dark. The picture is 900 px wide ' +
        'whatever the duration (long files keep the loudest frame of each pixel column).\n\n' +
        'A WAV is read at its own sample rate; other formats (FLAC, MP3, ...) are decoded with ffmpeg at ' +
        '16 kHz. `ctspeech generate --spectrogram` draws every WAV it writes the same way.',
    )
    .argument('<audio>', 'the audio file to draw (WAV, or any format ffmpeg reads)')
    .option('-o, --out <file.png>', 'where to write the PNG (default: <audio stem>.spectrogram.png beside it)')
    .option('--title <text>', 'title above the picture (default: the file name)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ctspeech spectrogram samples/speech/test/demo-moreinfo.wav --out demo.png\n' +
        '  ctspeech spectrogram runs/quickstart/ct-small/generated/continuation.wav\n' +
        '      writes runs/quickstart/ct-small/generated/continuation.spectrogram.png',
    )
    .action(async (audio: string, o: SpectrogramFlags) => {
      await runSpectrogram(audio, o);
    });
}

export async function runSpectrogram(audio: string, o: SpectrogramFlags): Promise<string> {
  if (!fs.existsSync(audio)) throw new UsageError(`${audio} does not exist: name an audio file to draw`);
  if (fs.statSync(audio).isDirectory()) throw new UsageError(`${audio} is a folder: name an audio file to draw`);
  const out = o.out ?? spectrogramPathFor(audio);
  if (!/\.png$/i.test(out)) throw new UsageError(`--out must name a .png file, got ${out}`);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory())
    throw new UsageError(`--out ${out} is a folder; name a .png file`);
  const { samples, sampleRate } = await readForSpectrogram(audio);
  const png = spectrogramPng(samples, sampleRate, { title: o.title ?? path.basename(audio) });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileAtomic(out, png);
  console.log(`wrote ${out} (${(samples.length / sampleRate).toFixed(2)} s at ${sampleRate} Hz)`);
  return out;
}
