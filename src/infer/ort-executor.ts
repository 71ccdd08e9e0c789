import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { Feeds, GraphExecutor } from '../engine/executor.js';
import type { EngineInfo } from './executor.js';
import { UserError } from '../util/errors.js';

/**
 * Where onnxruntime runs a graph (`--device`). Execution providers of onnxruntime-node 1.30 on
 * Linux x64 (its `listSupportedBackends()`): cpu and webgpu are compiled into the bundled
 * libonnxruntime.so.1 (WebGPU is Dawn over Vulkan there); cuda and tensorrt are shared libraries
 * that its install script fetches from nuget.org only when asked. TensorRT is not offered: it builds
 * an engine per graph (minutes for a training graph) and needs TensorRT itself installed.
 */
export type OrtDevice = 'auto' | 'cpu' | 'cuda' | 'webgpu';
/** The device a session really runs on. */
export type OrtProvider = Exclude<OrtDevice, 'auto'>;
export const ORT_DEVICES: readonly OrtDevice[] = ['auto', 'cpu', 'cuda', 'webgpu'];
/** The choices in words, for error messages. */
export const DEVICE_CHOICES = `${ORT_DEVICES.slice(0, -1).join(', ')} or ${ORT_DEVICES.at(-1)}`;

/** The `--device` help of every command that runs onnxruntime. */
export const DEVICE_HELP =
  'onnxruntime: auto (cuda when its provider is installed, else cpu), cpu, cuda (NVIDIA GPU; its provider is ' +
  'a separate install, see README "GPU training") or webgpu (experimental; Vulkan on Linux)';

export function isOrtDevice(v: string): v is OrtDevice {
  return (ORT_DEVICES as readonly string[]).includes(v);
}

export class EngineError extends UserError {}

let loaded: typeof Ort | null = null;

/** onnxruntime-node loads its native library on import: imported lazily, so tfjs-only commands never need it. */
export async function loadOrt(): Promise<typeof Ort> {
  if (loaded) return loaded;
  try {
    loaded = (await import('onnxruntime-node')) as typeof Ort;
    return loaded;
  } catch (e) {
    throw new EngineError(`onnxruntime-node could not be loaded (${firstLine(e)}); use --engine tfjs`);
  }
}

const req = createRequire(import.meta.url);

/** The installed onnxruntime-node package folder, or null. */
function ortPackageDir(): string | null {
  try {
    return path.dirname(req.resolve('onnxruntime-node/package.json'));
  } catch {
    return null;
  }
}

/** The folder of onnxruntime-node's native libraries for this platform (where the CUDA provider goes). */
export function ortBinaryDir(): string {
  const pkg = ortPackageDir() ?? path.join('node_modules', 'onnxruntime-node');
  return path.join(pkg, 'bin', 'napi-v6', os.platform(), os.arch());
}

/** What `--onnxruntime-node-install=cuda12` puts beside the CPU binding (besides the TensorRT provider). */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

/**
 * The CUDA execution provider is a separate download (onnxruntime-node's install script fetches it
 * from nuget.org only when asked, see README "GPU training"); it is present when its libraries sit
 * beside the CPU binding. onnxruntime-node ships it for Linux x64 only.
 */
export function cudaProviderInstalled(dir = ortBinaryDir()): boolean {
  return CUDA_PROVIDER_FILES.every((f) => fs.existsSync(path.join(dir, f)));
}

/** The command that installs the CUDA provider, with the path of this install's onnxruntime-node. */
export function cudaInstallCommand(): string {
  const pkg = ortPackageDir();
  let where = path.join('node_modules', 'onnxruntime-node');
  if (pkg) {
    const rel = path.relative(process.cwd(), pkg);
    where = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : pkg;
  }
  return `node ${path.join(where, 'script', 'install.js')} --onnxruntime-node-install=cuda12`;
}

/**
 * Execution providers compiled into this onnxruntime-node (its `listSupportedBackends()`; `bundled`
 * false means a separate download). Loads the native binding; null when it cannot be loaded.
 */
export function ortBuildProviders(): { name: string; bundled: boolean }[] | null {
  try {
    const ort = req('onnxruntime-node') as { listSupportedBackends?: () => { name: string; bundled: boolean }[] };
    return ort.listSupportedBackends?.() ?? null;
  } catch {
    return null;
  }
}

/** Whether onnxruntime-node's prebuilt binary has the WebGPU provider (not on Linux arm64, for one). */
export function webgpuInBuild(): boolean {
  return ortBuildProviders()?.some((b) => b.name === 'webgpu') ?? false;
}

/** Whether the Vulkan loader that Dawn (WebGPU on Linux) opens at run time is on the library path. */
export function vulkanLoaderFound(): boolean {
  if (os.platform() !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  if (dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')))) return true;
  try {
    return fs.readFileSync('/etc/ld.so.cache').includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

/**
 * What device resolution needs to know about this machine: injectable, so that the choices and
 * their messages are testable without a GPU. `autoCudaFailure` remembers, per process, why CUDA
 * could not start under `--device auto`, so later sessions go straight to the CPU.
 */
export interface DeviceContext {
  platform: string;
  cudaInstalled(): boolean;
  webgpuInBuild(): boolean;
  vulkanLoaderFound(): boolean;
  binaryDir(): string;
  installCommand(): string;
  warn(message: string): void;
  autoCudaFailure: string | null;
}

export function systemDeviceContext(): DeviceContext {
  return {
    platform: `${os.platform()}-${os.arch()}`,
    cudaInstalled: () => cudaProviderInstalled(),
    webgpuInBuild,
    vulkanLoaderFound,
    binaryDir: ortBinaryDir,
    installCommand: cudaInstallCommand,
    warn: (m) => console.warn(m),
    autoCudaFailure: null,
  };
}

const systemContext = systemDeviceContext();

function cudaMissingMessage(ctx: DeviceContext): string {
  if (ctx.platform !== 'linux-x64')
    return (
      `--device cuda: onnxruntime-node ships its CUDA execution provider for Linux x64 only (this is ` +
      `${ctx.platform}); use --device cpu${ctx.webgpuInBuild() ? ' or --device webgpu' : ''}`
    );
  return (
    '--device cuda: the CUDA execution provider of onnxruntime-node is not installed here ' +
    `(${ctx.binaryDir()} has no ${CUDA_PROVIDER_FILES.join(' / ')}). Install it once (a download from ` +
    'nuget.org; it also needs an NVIDIA driver and the CUDA and cuDNN libraries it links against, documented ' +
    'by onnxruntime-node as CUDA 12 with cuDNN 9):\n' +
    `  ${ctx.installCommand()}\n` +
    'then check the machine with scripts/gpu-check.sh (README, "GPU training"); or use --device cpu'
  );
}

/**
 * The provider a session will be asked for: `auto` is cuda when its provider is installed (and did
 * not already fail to start in this process), else cpu; never webgpu. An explicit provider that is
 * absent is an error naming the flag and the way to install it, never a silent fallback.
 */
export function resolveDevice(device: OrtDevice = 'auto', ctx: DeviceContext = systemContext): OrtProvider {
  if (!isOrtDevice(device)) throw new EngineError(`--device must be ${DEVICE_CHOICES}, got ${device}`);
  if (device === 'auto') return ctx.cudaInstalled() && ctx.autoCudaFailure === null ? 'cuda' : 'cpu';
  if (device === 'cuda' && !ctx.cudaInstalled()) throw new EngineError(cudaMissingMessage(ctx));
  if (device === 'webgpu' && !ctx.webgpuInBuild())
    throw new EngineError(
      `--device webgpu: this onnxruntime-node build (${ctx.platform}) has no WebGPU execution provider ` +
        '(its prebuilt binaries have one on Windows, macOS and Linux x64); use --device cpu',
    );
  return device;
}

/** The first line of an error, without the source location and condition of onnxruntime's ORT_ENFORCE. */
export function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const line =
    m
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? m;
  const enforced = line.indexOf(' was false. ');
  return enforced >= 0 ? line.slice(enforced + ' was false. '.length) : line;
}

/** Why an explicitly requested GPU provider could not start a session, and what to do. */
export function providerFailureMessage(device: 'cuda' | 'webgpu', cause: string, ctx: DeviceContext): string {
  if (device === 'cuda')
    return (
      `--device cuda: onnxruntime could not start its CUDA execution provider (${cause}). The provider is ` +
      'installed, but it also needs an NVIDIA GPU with its driver (nvidia-smi lists it) and the CUDA and ' +
      'cuDNN libraries it was built against on the library path (onnxruntime-node 1.30 documents CUDA 12 and ' +
      `cuDNN 9): \`ldd ${path.join(ctx.binaryDir(), 'libonnxruntime_providers_cuda.so')} | grep "not found"\` ` +
      'names any that are missing, and onnxruntime logs the details above. Or use --device cpu'
    );
  const linux = ctx.platform.startsWith('linux');
  return (
    `--device webgpu: onnxruntime could not start its WebGPU execution provider (${cause}). ` +
    (linux
      ? 'On Linux it runs on Vulkan: it needs the Vulkan loader, libvulkan.so.1 ' +
        `(${ctx.vulkanLoaderFound() ? 'found here' : 'not found here; e.g. apt-get install libvulkan1'}), ` +
        'and a GPU driver with a Vulkan ICD (`vulkaninfo --summary` lists the GPUs Vulkan sees). '
      : 'It needs a GPU adapter (Metal on macOS, Direct3D 12 on Windows). ') +
    'Or use --device cuda or --device cpu'
  );
}

type CreateSession = (file: string, options: Ort.InferenceSession.SessionOptions) => Promise<Ort.InferenceSession>;

/**
 * A session for `file` on the resolved device. Nodes a GPU provider has no kernel for still run on
 * the CPU provider listed after it (onnxruntime's per-node placement, which it logs as a warning);
 * what never happens silently is a whole session on the CPU: an explicit `cuda`/`webgpu` that
 * cannot start is an error (when the graph loads on the CPU, so the graph is not to blame), and
 * `auto` falls back to the CPU with a warning, once per process.
 */
export async function createSession(
  create: CreateSession,
  file: string,
  device: OrtDevice,
  threads: number,
  ctx: DeviceContext = systemContext,
): Promise<{ session: Ort.InferenceSession; device: OrtProvider }> {
  const want = resolveDevice(device, ctx);
  const options = (ep: OrtProvider): Ort.InferenceSession.SessionOptions => ({
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const onCpu = async () => {
    try {
      return await create(file, options('cpu'));
    } catch (e) {
      throw new EngineError(`${file}: onnxruntime could not load this graph (${firstLine(e)})`);
    }
  };
  if (want === 'cpu') return { session: await onCpu(), device: 'cpu' };
  try {
    return { session: await create(file, options(want)), device: want };
  } catch (e) {
    const cause = firstLine(e);
    // The graph itself may be at fault: then the CPU fails too, and says why.
    const session = await onCpu();
    if (device === 'auto') {
      ctx.autoCudaFailure = cause;
      ctx.warn(
        `--device auto: the CUDA execution provider is installed but could not start (${cause}); running on ` +
          'the CPU. --device cuda makes this an error that says what is missing; --device cpu skips the attempt.',
      );
      return { session, device: 'cpu' };
    }
    await session.release();
    throw new EngineError(providerFailureMessage(want as 'cuda' | 'webgpu', cause, ctx));
  }
}

export interface OrtOptions {
  /** intra-op threads; default: all cores */
  threads?: number;
  device?: OrtDevice;
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
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    const { session, device } = await createSession(
      (f, o) => ort.InferenceSession.create(f, o),
      file,
      opts.device ?? 'auto',
      threads,
    );
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
