/**
 * The WaveNet baseline's configuration, presets and parameter list (docs/models.md): causal
 * dilated convolutions of width 2, dilations 1, 2, ..., 2^(layersPerStack-1) repeated `stacks` times.
 */
import { z } from 'zod';
import { ConfigError } from './config.js';
import { type ParamInit, paramCount, type ParamSpec } from './param-spec.js';
import { NUM_CODES } from '../util/codes.js';

const int = (min: number) => z.number().int().min(min);

export const WavenetConfig = z.strictObject({
  kind: z.literal('wavenet'),
  vocab: z.literal(NUM_CODES),
  stacks: int(1),
  layersPerStack: int(1).max(16),
  residualChannels: int(1),
  dilationChannels: int(1),
  skipChannels: int(1),
  headChannels: int(1),
  /** positions scored per training crop (after a full receptive field of context) */
  segment: int(1),
  /**
   * 'fan-in' (default): embedding N(0, 1), every matrix and bias U(±1/sqrt(fan_in)), as standard
   * WaveNet implementations start (PyTorch's layer defaults). 'normal': everything N(0, initStd^2),
   * biases 0 — what the transformers use; kept to reproduce older runs and as a learning-test control.
   */
  init: z.enum(['fan-in', 'normal']).default('fan-in'),
  initStd: z.number().positive().default(0.02),
  seed: z.number().int().default(0),
});
export type WavenetConfig = z.infer<typeof WavenetConfig>;

export function parseWavenetConfig(json: unknown, source = 'config'): WavenetConfig {
  const r = WavenetConfig.safeParse(json);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const where = i.path.join('.') || '(top level)';
    const what =
      i.code === 'unrecognized_keys'
        ? `unknown field(s) ${i.keys.join(', ')} (known: ${Object.keys(WavenetConfig.shape).join(', ')})`
        : i.message;
    return `  - ${where}: ${what}`;
  });
  throw new ConfigError(
    `${source}: invalid wavenet config (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n` +
      problems.join('\n'),
  );
}

/** Dilation of every layer, in order. */
export function dilations(c: WavenetConfig): number[] {
  return Array.from({ length: c.stacks * c.layersPerStack }, (_, i) => 2 ** (i % c.layersPerStack));
}

/** Samples a prediction sees, the current one included: each width-2 layer adds its dilation. */
export function receptiveField(c: WavenetConfig): number {
  return 1 + dilations(c).reduce((a, d) => a + d, 0);
}

/**
 * Parameters in order. A layer's two taps (x[t-d] and x[t]) map to the filter and gate halves at
 * once: `conv.w0`/`conv.w1` are [R, 2D] with the filter in the first D columns, so a layer is two
 * matmuls rather than four.
 */
export function wavenetParamSpec(c: WavenetConfig): ParamSpec[] {
  const { residualChannels: R, dilationChannels: D, skipChannels: S, headChannels: E } = c;
  const out: ParamSpec[] = [];
  // A deep gated residual stack needs activations of order one from the first step: with N(0, 0.02)
  // everywhere a 20-layer stack starts near zero and spends its first hundreds of steps at the
  // unigram loss (measured: 1.6 bits/sample worse after 200 steps). Fan-in scaling keeps each
  // layer's pre-activations at unit scale. A layer's two taps are the halves of one [2R, 2D] map,
  // so their fan-in is 2R.
  const fanIn = c.init === 'fan-in';
  const weight = (n: number): ParamInit => (fanIn ? { uniform: 1 / Math.sqrt(n) } : 'normal');
  const bias = (n: number): ParamInit => (fanIn ? { uniform: 1 / Math.sqrt(n) } : 'zeros');
  const p = (name: string, shape: number[], init: ParamInit) => out.push({ name, shape, init, compression: false });
  p('embed.weight', [NUM_CODES, R], fanIn ? { normal: 1 } : 'normal');
  dilations(c).forEach((_, i) => {
    p(`layers.${i}.conv.w0`, [R, 2 * D], weight(2 * R));
    p(`layers.${i}.conv.w1`, [R, 2 * D], weight(2 * R));
    p(`layers.${i}.conv.b`, [2 * D], bias(2 * R));
    p(`layers.${i}.res.w`, [D, R], weight(D));
    p(`layers.${i}.res.b`, [R], bias(D));
    p(`layers.${i}.skip.w`, [D, S], weight(D));
    p(`layers.${i}.skip.b`, [S], bias(D));
  });
  p('head.w1', [S, E], weight(S));
  p('head.b1', [E], bias(S));
  p('head.w2', [E, NUM_CODES], weight(E));
  p('head.b2', [NUM_CODES], bias(E));
  return out;
}

export function describeWavenet(c: WavenetConfig): string {
  const n = paramCount(wavenetParamSpec(c));
  const rf = receptiveField(c);
  return (
    `${c.stacks} x ${c.layersPerStack} layers (dilations 1..${2 ** (c.layersPerStack - 1)}), ` +
    `residual ${c.residualChannels}, dilation ${c.dilationChannels}, skip ${c.skipChannels}, head ${c.headChannels}: ` +
    `${(n / 1e6).toFixed(2)}M parameters, receptive field ${rf} samples`
  );
}

const common = { kind: 'wavenet', vocab: NUM_CODES, init: 'fan-in', initStd: 0.02, seed: 0 } as const;
const raw: Record<string, z.input<typeof WavenetConfig>> = {
  'wavenet-tiny': {
    ...common,
    stacks: 1,
    layersPerStack: 4,
    residualChannels: 16,
    dilationChannels: 16,
    skipChannels: 32,
    headChannels: 32,
    segment: 64,
  },
  // Sized to ct-cpu's ~1.2M parameters; receptive field 2,047 samples (128 ms at 16 kHz).
  'wavenet-cpu': {
    ...common,
    stacks: 2,
    layersPerStack: 10,
    residualChannels: 88,
    dilationChannels: 88,
    skipChannels: 176,
    headChannels: 256,
    segment: 1024,
  },
  // Built for real-time generation at batch 1 on 2 CPU cores (`generate --block 32`): one stack of 6
  // layers (receptive field 64 samples, 4 ms), 32 channels. Each layer costs ~13 kernels per sample
  // whatever its width, so speed is bought with depth; quality with it (BENCHMARKS.md).
  'wavenet-rt': {
    ...common,
    stacks: 1,
    layersPerStack: 6,
    residualChannels: 32,
    dilationChannels: 32,
    skipChannels: 64,
    headChannels: 128,
    segment: 1024,
  },
  // The paper's baseline: 30 layers (3 stacks of dilations 1..512), about 40M parameters.
  'wavenet-paper': {
    ...common,
    stacks: 3,
    layersPerStack: 10,
    residualChannels: 464,
    dilationChannels: 464,
    skipChannels: 464,
    headChannels: 512,
    segment: 4096,
  },
};

export const WAVENET_PRESETS: Readonly<Record<string, WavenetConfig>> = Object.freeze(
  Object.fromEntries(
    Object.entries(raw).map(([name, c]) => [name, Object.freeze(parseWavenetConfig(c, `preset '${name}'`))]),
  ),
);

export function wavenetPreset(name: string): WavenetConfig {
  const c = Object.prototype.hasOwnProperty.call(WAVENET_PRESETS, name) ? WAVENET_PRESETS[name] : undefined;
  if (!c)
    throw new ConfigError(
      `unknown wavenet preset '${name}'; known presets: ${Object.keys(WAVENET_PRESETS).join(', ')}`,
    );
  return { ...c };
}
