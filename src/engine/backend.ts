import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
// Imported for its side effect too: it registers the 'wasm' backend factory on our tfjs engine.
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../util/errors.js';

/** The one tfjs namespace the engine uses, so every tensor lives on the same engine instance. */
export { tf };

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** What is running, e.g. "wasm (SIMD, 1 thread)". */
  detail: string;
  /** Why this one was chosen, including why better ones were not. */
  reason: string;
}

export class BackendError extends UserError {}

/** Native TensorFlow bindings, best first. */
const NATIVE_PACKAGES: readonly { pkg: string; kind: string }[] = [
  { pkg: '@tensorflow/tfjs-node-gpu', kind: 'CUDA' },
  { pkg: '@tensorflow/tfjs-node', kind: 'CPU' },
];

function causeOf(e: unknown): string {
  return String((e as { message?: string })?.message ?? e).split('\n')[0];
}

/** Loading is attempted once per process: a missing package or library does not heal in-process. */
const loads = new Map<BackendName, Promise<string>>();

async function loadTensorflow(): Promise<string> {
  const failures: string[] = [];
  for (const { pkg, kind } of NATIVE_PACKAGES) {
    try {
      await import(pkg);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const missing =
        (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && causeOf(e).includes(`'${pkg}'`);
      failures.push(missing ? `${pkg} not installed` : `${pkg} failed to load: ${causeOf(e)}`);
      continue;
    }
    // A binding built against another tfjs-core version registers on its own copy of the engine,
    // where our tensors would never see it.
    if (!tf.findBackend('tensorflow')) {
      failures.push(
        `${pkg} loaded but its 'tensorflow' backend is not on our @tensorflow/tfjs ${tf.version_core} engine ` +
          '(version mismatch?)',
      );
      continue;
    }
    return `tensorflow via ${pkg} (${kind})`;
  }
  throw new Error(failures.join('; '));
}

async function loadWasm(): Promise<string> {
  // Node cannot fetch the .wasm by URL the way browsers do: point tfjs at the package's dist folder.
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  setWasmPaths(path.dirname(main) + path.sep);
  return 'wasm';
}

async function load(name: BackendName): Promise<string> {
  let p = loads.get(name);
  if (!p) {
    p = name === 'tensorflow' ? loadTensorflow() : name === 'wasm' ? loadWasm() : Promise.resolve('cpu');
    loads.set(name, p);
  }
  return p;
}

async function activate(name: BackendName): Promise<string> {
  const detail = await load(name);
  if (tf.getBackend() !== name && !(await tf.setBackend(name))) {
    throw new Error(`tfjs could not initialise the '${name}' backend`);
  }
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = getThreadsCount();
    return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`;
  }
  if (name === 'cpu') {
    // tfjs-backend-cpu prints a banner on first use urging tfjs-node; our BackendInfo.reason already
    // says why cpu was chosen, and the banner would break plain-line output.
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
    return 'cpu (pure JavaScript)';
  }
  return detail;
}

let current: { choice: BackendName | 'auto'; info: BackendInfo } | undefined;

/**
 * Selects and activates the tfjs backend: `auto` takes the best that loads (tensorflow > wasm >
 * cpu); a forced name is that backend or a BackendError, never a silent fallback.
 */
export async function initBackend(forced: BackendName | 'auto' = 'auto'): Promise<BackendInfo> {
  if (current && current.choice === forced && tf.getBackend() === current.info.name) return current.info;
  let info: BackendInfo | undefined;
  if (forced === 'auto') {
    const skipped: string[] = [];
    for (const name of BACKENDS) {
      try {
        const detail = await activate(name);
        const why =
          name === 'tensorflow'
            ? 'native TensorFlow is the fastest available'
            : name === 'wasm'
              ? 'wasm is the embedded default'
              : 'cpu is the last resort';
        info = { name, detail, reason: [...skipped, why].join('; ') };
        break;
      } catch (e) {
        skipped.push(name === 'tensorflow' ? causeOf(e) : `${name} unavailable: ${causeOf(e)}`);
      }
    }
    if (!info) throw new BackendError(`no tfjs backend could be loaded: ${skipped.join('; ')}`);
  } else {
    if (!BACKENDS.includes(forced)) {
      throw new BackendError(`--backend ${String(forced)}: unknown backend; choose auto, ${BACKENDS.join(', ')}`);
    }
    try {
      info = { name: forced, detail: await activate(forced), reason: 'forced by --backend' };
    } catch (e) {
      throw new BackendError(`--backend ${forced}: the ${forced} backend cannot be used: ${causeOf(e)}`, { cause: e });
    }
  }
  current = { choice: forced, info };
  return info;
}

export function backendSummary(info: BackendInfo): string {
  return `backend: ${info.detail} (${info.reason})`;
}
