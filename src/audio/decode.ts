import fs from 'node:fs';
import path from 'node:path';
import { AudioDecodeError } from './errors.js';
import { Growable, streamWithFfmpeg } from './ffmpeg.js';
import { StreamResampler } from './resample.js';
import { NATIVE_WAV_ENCODINGS, streamWavMono, UnsupportedWavEncoding } from './wav.js';

export interface DecodedAudio {
  /** mono float32 in [-1, 1] at `sampleRate` */
  samples: Float32Array;
  sampleRate: number;
  /** the file's own rate and channel count, when known */
  sourceRate: number | null;
  channels: number;
  decoder: 'wav' | 'ffmpeg';
  /** damage the decoder worked around (the audio was kept) */
  warnings: string[];
}

export const WAV_EXTENSIONS = new Set(['.wav', '.wave']);
/** What a folder scan treats as audio; anything ffmpeg reads can still be decoded by path. */
export const AUDIO_EXTENSIONS = new Set([
  ...WAV_EXTENSIONS,
  '.flac',
  '.mp3',
  '.ogg',
  '.oga',
  '.opus',
  '.m4a',
  '.mp4',
  '.aac',
  '.g722',
  '.722',
  '.aif',
  '.aiff',
  '.aifc',
  '.au',
  '.snd',
  '.wma',
  '.webm',
  '.mka',
  '.caf',
  '.amr',
  '.gsm',
  '.spx',
  '.wv',
  '.ape',
  '.mkv',
]);

export function isAudioPath(p: string): boolean {
  return AUDIO_EXTENSIONS.has(path.extname(p).toLowerCase());
}

/** What a streamed decode reports once the last block is out. */
export interface AudioInfo {
  sampleRate: number;
  sourceRate: number | null;
  channels: number;
  decoder: 'wav' | 'ffmpeg';
  /** mono samples delivered at `sampleRate` */
  length: number;
  /** damage the decoder worked around (the audio was kept) */
  warnings: string[];
}

/**
 * Decode one file to mono float32 at `sampleRate`. WAVs stream through wavefile's header parse and
 * our band-limited resampler; everything else (and WAV encodings such as ADPCM) goes through ffmpeg.
 */
export async function decodeAudio(file: string, sampleRate = 16000): Promise<DecodedAudio> {
  const out = new Growable();
  const info = await streamAudio(file, sampleRate, (mono) => out.push(mono));
  return { ...info, samples: out.take() };
}

/**
 * As decodeAudio, but each block of mono samples goes to `onChunk` as soon as it is decoded, so a
 * caller that consumes blocks holds one block of the file, not the file. Errors thrown by
 * `onChunk` stop the decode and come back unchanged.
 */
export async function streamAudio(
  file: string,
  sampleRate: number,
  onChunk: (mono: Float32Array) => void,
): Promise<AudioInfo> {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0)
    throw new Error(`sample rate must be a positive integer, got ${sampleRate}`);
  const abs = path.resolve(file);
  let notWav: string | null = null;
  if (WAV_EXTENSIONS.has(path.extname(abs).toLowerCase())) {
    const magic = sniff(abs);
    if (magic === null || RIFF_MAGIC.has(magic)) {
      try {
        return streamWav(abs, sampleRate, onChunk);
      } catch (e) {
        if (!(e instanceof UnsupportedWavEncoding)) throw e;
        notWav = `${e.message} (read natively: ${NATIVE_WAV_ENCODINGS})`;
      }
    } else {
      // A FLAC or MP3 saved under a .wav name is common; ffmpeg reads it by content.
      notWav = `not a RIFF/WAVE file (starts with ${JSON.stringify(magic)})`;
    }
  }
  try {
    const r = await streamWithFfmpeg(abs, sampleRate, onChunk);
    return {
      sampleRate,
      sourceRate: r.sourceRate,
      channels: r.channels,
      decoder: 'ffmpeg',
      length: r.length,
      warnings: r.warnings,
    };
  } catch (e) {
    if (notWav === null || !(e instanceof AudioDecodeError)) throw e;
    throw new AudioDecodeError(abs, `${notWav}, and ffmpeg cannot decode it either: ${e.reason}`);
  }
}

const RIFF_MAGIC = new Set(['RIFF', 'RIFX', 'RF64']);

/** The first four bytes as text, or null when the file is too short to tell (the WAV reader then says why). */
function sniff(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null; // missing, a folder, unreadable: the WAV reader words these
  }
  try {
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 ? head.toString('latin1') : null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function streamWav(file: string, sampleRate: number, onChunk: (mono: Float32Array) => void): AudioInfo {
  let resampler: StreamResampler | null = null;
  let length = 0;
  const emit = (x: Float32Array) => {
    length += x.length;
    if (x.length) onChunk(x);
  };
  const layout = streamWavMono(file, (mono, l) => {
    if (l.sampleRate === sampleRate) return emit(mono);
    resampler ??= new StreamResampler(l.sampleRate, sampleRate);
    emit(resampler.push(mono));
  });
  if (resampler) emit((resampler as StreamResampler).flush());
  if (length === 0) throw new AudioDecodeError(file, 'no samples after resampling (file too short)');
  return {
    sampleRate,
    sourceRate: layout.sampleRate,
    channels: layout.channels,
    decoder: 'wav',
    length,
    warnings: [],
  };
}
