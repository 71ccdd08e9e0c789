import path from 'node:path';
import { AudioDecodeError } from './errors.js';
import { decodeWithFfmpeg, Growable } from './ffmpeg.js';
import { StreamResampler } from './resample.js';
import { streamWavMono, UnsupportedWavEncoding } from './wav.js';

export interface DecodedAudio {
  /** mono float32 in [-1, 1] at `sampleRate` */
  samples: Float32Array;
  sampleRate: number;
  /** the file's own rate and channel count, when known */
  sourceRate: number | null;
  channels: number;
  decoder: 'wav' | 'ffmpeg';
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

/**
 * Decode one file to mono float32 at `sampleRate`. WAVs stream through wavefile's header parse and
 * our band-limited resampler; everything else (and WAV encodings such as ADPCM) goes through ffmpeg.
 */
export async function decodeAudio(file: string, sampleRate = 16000): Promise<DecodedAudio> {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0)
    throw new Error(`sample rate must be a positive integer, got ${sampleRate}`);
  const abs = path.resolve(file);
  if (WAV_EXTENSIONS.has(path.extname(abs).toLowerCase())) {
    try {
      return decodeWav(abs, sampleRate);
    } catch (e) {
      if (!(e instanceof UnsupportedWavEncoding)) throw e;
    }
  }
  const r = await decodeWithFfmpeg(abs, sampleRate);
  return { samples: r.samples, sampleRate, sourceRate: r.sourceRate, channels: r.channels, decoder: 'ffmpeg' };
}

function decodeWav(file: string, sampleRate: number): DecodedAudio {
  const out = new Growable();
  let resampler: StreamResampler | null = null;
  const layout = streamWavMono(file, (mono, l) => {
    if (l.sampleRate === sampleRate) return out.push(mono);
    resampler ??= new StreamResampler(l.sampleRate, sampleRate);
    out.push(resampler.push(mono));
  });
  if (resampler) out.push((resampler as StreamResampler).flush());
  const samples = out.take();
  if (samples.length === 0) throw new AudioDecodeError(file, 'no samples after resampling (file too short)');
  return { samples, sampleRate, sourceRate: layout.sampleRate, channels: layout.channels, decoder: 'wav' };
}
