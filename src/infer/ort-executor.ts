import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { Feeds, GraphExecutor } from '../engine/executor.js';
import type { EngineInfo } from './executor.js';
import { UserError } from '../util/errors.js';

export type OrtDevice = 'auto' | 'cpu' | 'cuda';

export class EngineError extends UserError {}

let loaded: typeof Ort | null = null;

/** onnxruntime-node loads its native library on import: imported lazily, so tfjs-only commands never need it. */
export async function loadOrt(): Promise<typeof Ort> {
  if (loaded) return loaded;
  try {
    loaded = (await import('onnxruntime-node')) as typeof Ort;
    return loaded;
  } catch (e) {
    throw new EngineError(
      `onnxruntime-node could not be loaded (${(e as Error).message.split('\n')[0]}); use --engine tfjs`,
    );
  }
}

/**
 * The CUDA execution provider is a separate download (onnxruntime-node's install script fetches it
 * only when asked, see README "GPU"); it is present when its library sits beside the CPU binding.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const req = createRequire(import.meta.url);
    const pkg = path.dirname(req.resolve('onnxruntime-node/package.json'));
    return fs.existsSync(
      path.join(pkg, 'bin', 'napi-v6', `${os.platform()}`, `${os.arch()}`, 'libonnxruntime_providers_cuda.so'),
    );
  } catch {
    return false;
  }
}

export interface OrtOptions {
  /** intra-op threads; default: all cores */
  threads?: number;
  device?: OrtDevice;
}

export function resolveDevice(device: OrtDevice = 'auto'): 'cpu' | 'cuda' {
  if (device === 'cuda' && !cudaProviderInstalled()) {
    throw new EngineError(
      '--device cuda: the CUDA execution provider of onnxruntime-node is not installed here. Install it with\n' +
        '  node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12\n' +
        '(needs CUDA 12 and cuDNN 9), or use --device cpu',
    );
  }
  if (device === 'auto') return cudaProviderInstalled() ? 'cuda' : 'cpu';
  return device;
}

/**
 * One exported graph in an onnxruntime session.
 * Inputs are wrapped without copying; outputs come back as host arrays.
 */
export class OrtExecutor implements GraphExecutor {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
  ) {}

  static async open(file: string, opts: OrtOptions = {}): Promise<{ exec: OrtExecutor; info: EngineInfo }> {
    const ort = await loadOrt();
    const device = resolveDevice(opts.device);
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, {
        executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (e) {
      throw new EngineError(`${file}: onnxruntime could not load this graph (${(e as Error).message.split('\n')[0]})`);
    }
    const version = ort.env.versions?.common ?? '';
    return {
      exec: new OrtExecutor(ort, session),
      info: {
        engine: 'onnxruntime',
        device,
        threads,
        summary: `onnxruntime${version ? ` ${version}` : ''} (${device}, ${threads} thread${threads > 1 ? 's' : ''})`,
      },
    };
  }

  async run(feeds: Feeds): Promise<Record<string, Float32Array>> {
    const inputs: Record<string, Ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const f = feeds[name];
      if (!f) throw new Error(`graph input '${name}' was not fed`);
      inputs[name] = new this.ort.Tensor('float32', f.data, f.shape as number[]);
    }
    const out = await this.session.run(inputs);
    const result: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(out)) result[name] = t.data as Float32Array;
    return result;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
