import type { TransformerConfig } from './config.js';
import type { WavenetConfig } from './wavenet-config.js';
import { NUM_CODES } from '../util/codes.js';

/**
 * Multiply-add FLOPs (2 per MAC) of one forward pass per scored sample, counting the matmuls as
 * tfjs runs them (the one-hot embedding as a matmul; onnxruntime gathers instead, so its GFLOP/s
 * figures are high by about 1%, the embedding's share). Element-wise ops,
 * softmax and layer norms are left out: they are memory-bound and small next to the matmuls.
 * Training costs about three times this (forward + two matmuls per matmul backward).
 */
export function transformerFlopsPerSample(c: TransformerConfig): { forward: number; train: number } {
  const d = c.dModel;
  const hd = c.heads * c.dHead;
  const n = c.segment;
  const K = c.compressedMemory + c.memory + n;
  let perLayer = 0;
  perLayer += 2 * d * hd; // query
  perLayer += (2 * 2 * d * hd * K) / n; // keys and values over the whole context, shared by the segment
  perLayer += (2 * d * hd * K) / n; // relative encodings W_R R, once per segment
  perLayer += 2 * 2 * K * hd; // content and position scores
  perLayer += 2 * K * hd; // probabilities x values
  perLayer += 2 * hd * d; // output projection
  perLayer += 2 * 2 * d * c.dFF; // feed-forward
  if (c.compressedMemory > 0 && (c.compression === 'conv' || c.compression === 'dilated-conv')) {
    perLayer += 2 * d * d; // c*d x d per n/c windows
  }
  const forward = 2 * NUM_CODES * d + c.layers * perLayer + 2 * d * NUM_CODES;
  return { forward, train: 3 * forward };
}

/** The same count for WaveNet: per layer two [R, 2D] taps, residual and skip 1x1s; then the head. */
export function wavenetFlopsPerSample(c: WavenetConfig): { forward: number; train: number } {
  const { residualChannels: R, dilationChannels: D, skipChannels: S, headChannels: E } = c;
  const layers = c.stacks * c.layersPerStack;
  const forward =
    2 * NUM_CODES * R + layers * (2 * 2 * R * 2 * D + 2 * D * R + 2 * D * S) + 2 * S * E + 2 * E * NUM_CODES;
  return { forward, train: 3 * forward };
}
