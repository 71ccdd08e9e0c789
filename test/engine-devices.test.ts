/**
 * onnxruntime devices: how `--device` resolves, what happens when a GPU provider is absent or cannot
 * start, and the words of each error. Everything runs without a GPU: the choices are checked against
 * an injected machine description and a fake session factory, and the real onnxruntime-node of this
 * install is probed for what it has (the assertions follow what it reports, never skipped).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type * as Ort from 'onnxruntime-node';
import { OnnxTracer } from '../src/engine/onnx-trace.js';
import {
  createSession,
  CUDA_PROVIDER_FILES,
  cudaInstallCommand,
  cudaProviderInstalled,
  DEVICE_CHOICES,
  DEVICE_HELP,
  type DeviceContext,
  EngineError,
  firstLine,
  ortBinaryDir,
  ortBuildProviders,
  OrtExecutor,
  type OrtDevice,
  ORT_DEVICES,
  resolveDevice,
  systemDeviceContext,
} from '../src/infer/ort-executor.js';
import { checkEngineFlags } from '../src/cli/eval.js';
import { UserError } from '../src/util/errors.js';
import { tempDir } from './helpers.js';

/** A machine as device resolution sees it; warnings are collected. */
function machine(o: Partial<{ platform: string; cuda: boolean; webgpu: boolean; vulkan: boolean }> = {}) {
  const warnings: string[] = [];
  const ctx: DeviceContext = {
    platform: o.platform ?? 'linux-x64',
    cudaInstalled: () => o.cuda ?? false,
    webgpuInBuild: () => o.webgpu ?? true,
    vulkanLoaderFound: () => o.vulkan ?? false,
    binaryDir: () => '/x/node_modules/onnxruntime-node/bin/napi-v6/linux/x64',
    installCommand: () => 'node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12',
    warn: (m) => warnings.push(m),
    autoCudaFailure: null,
  };
  return { ctx, warnings };
}

/**
 * A session factory that fails for the providers in `failing` (with onnxruntime's words) and
 * records every call; its sessions record their release.
 */
function factory(failing: string[], opts: { graphBroken?: boolean } = {}) {
  const calls: string[][] = [];
  const released: string[] = [];
  const create = async (_file: string, o: Ort.InferenceSession.SessionOptions) => {
    const eps = (o.executionProviders ?? []).map((e) => (typeof e === 'string' ? e : e.name));
    calls.push(eps);
    if (opts.graphBroken) throw new Error('Load model from x.onnx failed: Protobuf parsing failed.');
    if (failing.includes(eps[0]))
      throw new Error(
        eps[0] === 'cuda'
          ? 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'
          : '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 lambda adapter_result.status ' +
              '== wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters',
      );
    return { release: async () => void released.push(eps[0]) } as unknown as Ort.InferenceSession;
  };
  return { create, calls, released };
}

test('the devices: auto, cpu, cuda and webgpu, each explained in the --device help', () => {
  assert.deepEqual([...ORT_DEVICES], ['auto', 'cpu', 'cuda', 'webgpu']);
  assert.equal(DEVICE_CHOICES, 'auto, cpu, cuda or webgpu');
  for (const d of ORT_DEVICES) assert.match(DEVICE_HELP, new RegExp(`\\b${d}\\b`));
  assert.match(DEVICE_HELP, /auto \(cuda when its provider is installed, else cpu\)/);
  assert.match(DEVICE_HELP, /GPU training/, 'points to the README section that installs the provider');
});

test('auto takes cuda only when its provider is installed, and never webgpu', () => {
  assert.equal(resolveDevice('auto', machine({ cuda: true }).ctx), 'cuda');
  assert.equal(resolveDevice('auto', machine({ cuda: false }).ctx), 'cpu');
  assert.equal(resolveDevice('auto', machine({ cuda: false, webgpu: true, vulkan: true }).ctx), 'cpu');
  assert.equal(resolveDevice(undefined, machine({ cuda: true }).ctx), 'cuda', 'auto is the default');
  const failed = machine({ cuda: true }).ctx;
  failed.autoCudaFailure = 'CUDA failure 100: no CUDA-capable device is detected';
  assert.equal(resolveDevice('auto', failed), 'cpu', 'a provider that failed to start is not retried');
  assert.equal(resolveDevice('cpu', machine({ cuda: true }).ctx), 'cpu');
  assert.equal(resolveDevice('cuda', machine({ cuda: true }).ctx), 'cuda');
  assert.equal(resolveDevice('webgpu', machine({ webgpu: true }).ctx), 'webgpu');
});

test('--device cuda without its provider: an error naming the flag, the install command and the way out', () => {
  const { ctx } = machine({ cuda: false });
  assert.throws(
    () => resolveDevice('cuda', ctx),
    (e: Error) => {
      assert.ok(e instanceof EngineError && e instanceof UserError, 'a user error: printed without a stack');
      assert.equal((e as UserError).exitCode, 2);
      assert.match(e.message, /^--device cuda: the CUDA execution provider of onnxruntime-node is not installed/);
      assert.match(e.message, /libonnxruntime_providers_cuda\.so/);
      assert.match(
        e.message,
        /\n {2}node node_modules\/onnxruntime-node\/script\/install\.js --onnxruntime-node-install=cuda12\n/,
      );
      assert.match(e.message, /NVIDIA driver and the CUDA and cuDNN libraries .* CUDA 12 with cuDNN 9\)/);
      assert.match(e.message, /scripts\/gpu-check\.sh/);
      assert.match(e.message, /--device cpu/);
      return true;
    },
  );
  // Elsewhere there is nothing to install: onnxruntime-node has CUDA for Linux x64 only.
  assert.throws(
    () => resolveDevice('cuda', machine({ platform: 'darwin-arm64' }).ctx),
    /--device cuda: onnxruntime-node ships its CUDA execution provider for Linux x64 only \(this is darwin-arm64\); use --device cpu or --device webgpu/,
  );
});

test('--device webgpu where the build has no WebGPU provider, and devices that do not exist', () => {
  assert.throws(
    () => resolveDevice('webgpu', machine({ platform: 'linux-arm64', webgpu: false }).ctx),
    /--device webgpu: this onnxruntime-node build \(linux-arm64\) has no WebGPU execution provider.*use --device cpu/,
  );
  assert.throws(
    () => resolveDevice('tpu' as OrtDevice, machine().ctx),
    /--device must be auto, cpu, cuda or webgpu, got tpu/,
  );
  // The command line checks the flag before any work, with the same words.
  assert.throws(
    () => checkEngineFlags({ engine: 'onnxruntime', device: 'gpu' }),
    /--device must be auto, cpu, cuda or webgpu, got gpu/,
  );
  assert.throws(() => checkEngineFlags({ engine: 'tfjs', device: 'gpu' }), /--device must be/);
});

test('each provider gets its session options: the GPU first, the CPU for the nodes it has no kernel for', async () => {
  for (const [device, m, expected] of [
    ['cpu', machine({ cuda: true }), ['cpu']],
    ['auto', machine({ cuda: false }), ['cpu']],
    ['auto', machine({ cuda: true }), ['cuda', 'cpu']],
    ['cuda', machine({ cuda: true }), ['cuda', 'cpu']],
    ['webgpu', machine(), ['webgpu', 'cpu']],
  ] as const) {
    const f = factory([]);
    const r = await createSession(f.create, 'g.onnx', device, 3, m.ctx);
    assert.deepEqual(f.calls, [expected], device);
    assert.equal(r.device, expected[0]);
    assert.deepEqual(m.warnings, []);
  }
});

test('an explicit GPU provider that cannot start is an error, never a silent run on the CPU', async () => {
  const cuda = factory(['cuda']);
  await assert.rejects(createSession(cuda.create, 'g.onnx', 'cuda', 2, machine({ cuda: true }).ctx), (e: Error) => {
    assert.ok(e instanceof EngineError);
    assert.match(e.message, /^--device cuda: onnxruntime could not start its CUDA execution provider/);
    assert.match(e.message, /OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library/);
    assert.match(e.message, /nvidia-smi/);
    assert.match(
      e.message,
      /ldd \/x\/node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/,
    );
    assert.match(e.message, /Or use --device cpu$/);
    return true;
  });
  // The graph was tried on the CPU only to tell a provider failure from a broken graph, and released.
  assert.deepEqual(cuda.calls, [['cuda', 'cpu'], ['cpu']]);
  assert.deepEqual(cuda.released, ['cpu']);

  for (const vulkan of [false, true]) {
    const webgpu = factory(['webgpu']);
    await assert.rejects(createSession(webgpu.create, 'g.onnx', 'webgpu', 2, machine({ vulkan }).ctx), (e: Error) => {
      assert.ok(e instanceof EngineError);
      // onnxruntime's source location and condition are cut; its sentence is kept.
      assert.match(
        e.message,
        /^--device webgpu: onnxruntime could not start its WebGPU execution provider \(Failed to get a WebGPU adapter: No supported adapters\)\. On Linux it runs on Vulkan/,
      );
      assert.match(
        e.message,
        vulkan
          ? /libvulkan\.so\.1 \(found here\)/
          : /libvulkan\.so\.1 \(not found here; e\.g\. apt-get install libvulkan1\)/,
      );
      assert.match(e.message, /vulkaninfo --summary/);
      assert.match(e.message, /Or use --device cuda or --device cpu$/);
      return true;
    });
  }
  const mac = factory(['webgpu']);
  await assert.rejects(
    createSession(mac.create, 'g.onnx', 'webgpu', 2, machine({ platform: 'darwin-arm64' }).ctx),
    /needs a GPU adapter \(Metal on macOS, Direct3D 12 on Windows\)/,
  );
});

test("a graph that loads nowhere is the graph's error, whatever the device", async () => {
  for (const device of ['cpu', 'cuda', 'auto'] as const) {
    const f = factory([], { graphBroken: true });
    await assert.rejects(
      createSession(f.create, 'bad.onnx', device, 1, machine({ cuda: true }).ctx),
      (e: Error) =>
        e instanceof EngineError && /^bad\.onnx: onnxruntime could not load this graph \(Load model/.test(e.message),
    );
  }
});

test('auto: a CUDA provider installed but unable to start falls back to the CPU with a warning, once', async () => {
  const m = machine({ cuda: true });
  const f = factory(['cuda']);
  const first = await createSession(f.create, 'a.onnx', 'auto', 2, m.ctx);
  assert.equal(first.device, 'cpu');
  assert.equal(m.warnings.length, 1);
  assert.match(
    m.warnings[0],
    /^--device auto: the CUDA execution provider is installed but could not start \(OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library\); running on the CPU\. --device cuda makes this an error/,
  );
  assert.equal(m.ctx.autoCudaFailure, 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
  // Later sessions of the process go straight to the CPU: no second attempt, no second warning.
  const second = await createSession(f.create, 'b.onnx', 'auto', 2, m.ctx);
  assert.equal(second.device, 'cpu');
  assert.deepEqual(f.calls, [['cuda', 'cpu'], ['cpu'], ['cpu']]);
  assert.equal(m.warnings.length, 1);
  assert.deepEqual(f.released, [], 'the fallback sessions are kept');
  // An explicit --device cuda in the same process still tries, and fails with the reasons.
  await assert.rejects(
    createSession(f.create, 'c.onnx', 'cuda', 2, m.ctx),
    /^EngineError: --device cuda: onnxruntime could not start/,
  );
});

test('firstLine keeps the sentence of an ORT_ENFORCE failure and the first line of anything else', () => {
  assert.equal(firstLine(new Error('\n  one\ntwo')), 'one');
  assert.equal(firstLine('x.cc:1 f() a == b was false. It broke.\nmore'), 'It broke.');
});

// --- this install's onnxruntime-node, as it is: no GPU needed, and the assertions follow what it has.

test('this onnxruntime-node: its providers, and the CUDA provider files where the install script puts them', () => {
  const providers = ortBuildProviders();
  assert.ok(providers, 'onnxruntime-node loads');
  const names = providers.map((p) => p.name);
  assert.ok(names.includes('cpu'));
  if (process.platform === 'linux' && process.arch === 'x64') {
    // 1.30 on Linux x64: cpu and webgpu built in; cuda and tensorrt are separate downloads.
    assert.deepEqual(
      providers.filter((p) => ['cpu', 'webgpu', 'cuda', 'tensorrt'].includes(p.name)),
      [
        { name: 'cpu', bundled: true },
        { name: 'webgpu', bundled: true },
        { name: 'cuda', bundled: false },
        { name: 'tensorrt', bundled: false },
      ],
    );
    assert.equal(systemDeviceContext().webgpuInBuild(), true);
  }
  const dir = ortBinaryDir();
  assert.ok(fs.existsSync(path.join(dir, 'onnxruntime_binding.node')));
  assert.equal(
    cudaProviderInstalled(),
    CUDA_PROVIDER_FILES.every((f) => fs.existsSync(path.join(dir, f))),
  );
  const cmd = cudaInstallCommand();
  assert.match(cmd, /^node \S*install\.js --onnxruntime-node-install=cuda12$/);
  assert.ok(fs.existsSync(cmd.split(' ')[1]), `${cmd.split(' ')[1]} exists`);
  const auto = resolveDevice('auto');
  assert.equal(auto, cudaProviderInstalled() ? 'cuda' : 'cpu');
});

/** A two-input graph: y = a * b + a. */
function tinyGraph(): string {
  const t = new OnnxTracer();
  const a = t.input('a', Float32Array.of(1, 2, 3), [3]);
  const b = t.input('b', Float32Array.of(4, 5, 6), [3]);
  t.output('y', t.add(t.mul(a, b), a));
  const file = path.join(tempDir(), 'tiny.onnx');
  fs.writeFileSync(file, t.toModel({ graphName: 'tiny' }));
  return file;
}

const feeds = { a: { data: Float32Array.of(1, 2, 3), shape: [3] }, b: { data: Float32Array.of(4, 5, 6), shape: [3] } };

test('this machine: every device opens a real session on the device it names, or fails with its flag', async () => {
  const file = tinyGraph();
  for (const device of ORT_DEVICES) {
    let opened: Awaited<ReturnType<typeof OrtExecutor.open>> | null = null;
    try {
      opened = await OrtExecutor.open(file, { threads: 1, device });
    } catch (e) {
      assert.ok(e instanceof EngineError, `${device}: ${(e as Error).stack}`);
      assert.notEqual(device, 'cpu', `the CPU always opens: ${(e as Error).message}`);
      assert.notEqual(device, 'auto', `auto never fails for want of a GPU: ${(e as Error).message}`);
      assert.match(e.message, new RegExp(`^--device ${device}: `));
      if (device === 'cuda' && !cudaProviderInstalled()) assert.match(e.message, /--onnxruntime-node-install=cuda12/);
      continue;
    }
    const { exec, info } = opened;
    const expected = device === 'auto' ? (info.device === 'cuda' ? 'cuda' : 'cpu') : device;
    assert.equal(info.device, expected, device);
    if (device === 'auto' && !cudaProviderInstalled()) assert.equal(info.device, 'cpu');
    assert.match(info.summary, new RegExp(`^onnxruntime \\S+ \\(${expected}, 1 thread\\)$`));
    const y = await exec.run(feeds);
    assert.deepEqual([...y.y], [5, 12, 21]);
    await exec.dispose();
  }
});
