import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { BackendError, backendSummary, initBackend, tf } from '../src/engine/backend.js';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const nativeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

/** A computation whose answer is known, so "the backend works" means it computes, not just loads. */
function computes(): boolean {
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])).dataSync());
  return [...y].join(',') === '19,22,43,50';
}

test(
  'auto picks wasm when no native TensorFlow binding is installed, and says why',
  { skip: nativeInstalled && 'a tfjs-node binding is installed here' },
  async () => {
    const info = await initBackend('auto');
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.match(info.detail, /^wasm \((SIMD|no SIMD), \d+ threads?\)$/);
    assert.match(info.reason, /@tensorflow\/tfjs-node-gpu not installed/);
    assert.match(info.reason, /@tensorflow\/tfjs-node not installed/);
    assert.match(info.reason, /wasm is the embedded default/);
    assert.ok(computes());
    const summary = backendSummary(info);
    assert.ok(summary.includes(info.detail) && summary.includes(info.reason), summary);
  },
);

test('a repeated choice is cheap and returns the same answer', async () => {
  const first = await initBackend('wasm');
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(await initBackend('wasm'), first);
  assert.ok(performance.now() - t0 < 100, 'initBackend should not reload a backend already in use');
  // Someone switched tfjs behind our back: the same choice must switch it back, not trust the cache.
  await tf.setBackend('cpu');
  assert.equal((await initBackend('wasm')).name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test(
  'forcing tensorflow without a binding is a BackendError naming the flag, with no fallback',
  { skip: nativeInstalled && 'a tfjs-node binding is installed here' },
  async () => {
    await initBackend('wasm');
    await assert.rejects(initBackend('tensorflow'), (e: unknown) => {
      assert.ok(e instanceof BackendError, String(e));
      assert.match(e.message, /--backend tensorflow/);
      assert.match(e.message, /@tensorflow\/tfjs-node-gpu not installed/);
      return true;
    });
    assert.equal(tf.getBackend(), 'wasm', 'a failed forced backend must not change the active one');
  },
);

test('an unknown backend name is a BackendError naming the flag', async () => {
  await assert.rejects(
    initBackend('gpu' as never),
    (e: unknown) => e instanceof BackendError && /--backend gpu/.test(e.message),
  );
});

test('forcing cpu works and says it was forced', async () => {
  const info = await initBackend('cpu');
  assert.equal(info.name, 'cpu');
  assert.equal(info.reason, 'forced by --backend');
  assert.equal(tf.getBackend(), 'cpu');
  assert.ok(computes());
});

test('switching wasm <-> cpu works repeatedly, and tensors survive a switch', async () => {
  const kept = tf.tensor1d([1, 2, 3]);
  for (const name of ['wasm', 'cpu', 'wasm', 'cpu', 'wasm'] as const) {
    const info = await initBackend(name);
    assert.equal(info.name, name);
    assert.equal(tf.getBackend(), name);
    assert.ok(computes(), `computes on ${name}`);
    assert.deepEqual([...tf.tidy(() => tf.add(kept, 1).dataSync())], [2, 3, 4]);
  }
  kept.dispose();
  // Auto after forcing still resolves to the best backend rather than the last forced one.
  if (!nativeInstalled) {
    await initBackend('cpu');
    assert.equal((await initBackend('auto')).name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
  }
});
