/**
 * The memory a tfjs training step needs, estimated before the first step, so that a batch too large
 * for the backend is refused with the largest batch that fits instead of aborting deep inside wasm
 * (`RuntimeError: Aborted()`, `memory access out of bounds`).
 *
 * The forward pass is traced (shapes only, nothing computed) and the bytes of every tensor it
 * creates are summed: tfjs keeps them all for the backward pass. Reshapes share their input's
 * buffer and are not counted. Measured on tfjs-wasm (2 vCPU, Node 20, tfjs 4.22): a step takes
 * about 3x those activations (kept forward tensors, their gradients, transposed copies for wasm's
 * matmul) — ct-cpu at batch 8 (1.24 GB of activations) and wavenet-cpu at batch 2 (1.16 GB)
 * train; ct-cpu at batch 12 (1.86 GB) and wavenet-cpu at batch 3 (1.74 GB) abort wasm's 4 GB heap.
 */
import os from 'node:os';
import { OnnxTracer } from '../engine/onnx-trace.js';
import { windowLength } from '../models/family.js';
import { familyOf, type ModelConfig, paramSpecOf } from '../models/registry.js';
import { shapeSize } from '../models/param-spec.js';

/** tfjs-wasm is a 32-bit WebAssembly module: its heap cannot grow past 4 GiB (minus one page). */
export const WASM_HEAP_BYTES = 4294901760;
const ACTIVATION_FACTOR = 3;
/** weights, gradients, two Adam moments and an accumulation buffer */
const PARAM_COPIES = 5;

export interface MemoryEstimate {
  /** estimated peak bytes of one training step */
  bytes: number;
  /** what the backend can hold, and in what words */
  limit: number;
  limitName: string;
  /** the largest batch whose estimate fits under the limit (0 when not even one row fits) */
  largestBatch: number;
}

/** Bytes of the tensors one forward pass of `batch` training rows creates. */
export function activationBytes(cfg: ModelConfig, batch: number): number {
  const family = familyOf(cfg);
  const length = windowLength(family.trainingWindows(cfg));
  const t = new OnnxTracer();
  const params = new Map(
    paramSpecOf(cfg).map((s) => [s.name, t.param(s.name, new Float32Array(shapeSize(s.shape)), s.shape)]),
  );
  const model = family.sequenceModel(cfg);
  const reset = new Uint8Array(batch).fill(1);
  model.forward(t, params, new Int32Array(batch * length), reset, model.initialState(t, batch));
  let bytes = 0;
  for (const n of t.nodes) if (n.op !== 'Reshape' && n.dtype === 'float32') bytes += 4 * shapeSize(n.shape);
  return bytes;
}

/** The estimate for `batch` rows on a tfjs backend ('wasm', 'cpu', 'tensorflow'). */
export function trainingMemory(cfg: ModelConfig, batch: number, backend: string): MemoryEstimate {
  // Activations grow linearly with the batch: two small traces give the line.
  const one = activationBytes(cfg, 1);
  const perRow = activationBytes(cfg, 2) - one;
  const fixed = one - perRow;
  const paramBytes = 4 * paramSpecOf(cfg).reduce((a, s) => a + shapeSize(s.shape), 0);
  const stepBytes = (b: number) => ACTIVATION_FACTOR * (fixed + perRow * b) + PARAM_COPIES * paramBytes;
  // tensorflow (tfjs-node) may run on a GPU whose memory we cannot see: no limit is assumed there.
  const limit = backend === 'wasm' ? WASM_HEAP_BYTES : backend === 'cpu' ? os.totalmem() : Infinity;
  const limitName = backend === 'wasm' ? "tfjs-wasm's 4 GB heap" : `this machine's ${gb(os.totalmem())} GB of memory`;
  const largestBatch = Math.max(
    0,
    Math.floor((limit - PARAM_COPIES * paramBytes) / ACTIVATION_FACTOR - fixed) / perRow,
  );
  return { bytes: stepBytes(batch), limit, limitName, largestBatch: Math.floor(largestBatch) };
}

export function gb(bytes: number): string {
  return (bytes / 1e9).toFixed(1);
}
