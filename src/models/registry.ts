/** The model kinds behind one interface for files, presets and descriptions. */
import { ConfigError, parseTransformerConfig, PRESETS, type TransformerConfig } from './config.js';
import { describeParams, type ParamSpec, transformerParamSpec } from './param-spec.js';
import {
  describeWavenet,
  parseWavenetConfig,
  WAVENET_PRESETS,
  type WavenetConfig,
  wavenetParamSpec,
} from './wavenet-config.js';

export type ModelConfig = TransformerConfig | WavenetConfig;

export const ALL_PRESETS: readonly string[] = [...Object.keys(PRESETS), ...Object.keys(WAVENET_PRESETS)];

export function parseModelConfig(json: unknown, source = 'config'): ModelConfig {
  const kind = (json as { kind?: unknown } | null)?.kind;
  if (kind === 'wavenet') return parseWavenetConfig(json, source);
  if (kind === 'transformer' || kind === undefined) return parseTransformerConfig(json, source);
  throw new ConfigError(`${source}: kind must be 'transformer' or 'wavenet', got ${JSON.stringify(kind)}`);
}

export function modelPreset(name: string): ModelConfig {
  if (Object.prototype.hasOwnProperty.call(PRESETS, name)) return { ...PRESETS[name] };
  if (Object.prototype.hasOwnProperty.call(WAVENET_PRESETS, name)) return { ...WAVENET_PRESETS[name] };
  throw new ConfigError(`unknown preset '${name}'; known presets: ${ALL_PRESETS.join(', ')}`);
}

export function paramSpecOf(c: ModelConfig): ParamSpec[] {
  return c.kind === 'wavenet' ? wavenetParamSpec(c) : transformerParamSpec(c);
}

/** The model's name as the paper's comparison uses it. */
export function modelName(c: ModelConfig): string {
  if (c.kind === 'wavenet') return 'WaveNet';
  return c.compressedMemory > 0 ? 'Compressive Transformer' : 'Transformer-XL';
}

export function describeModel(c: ModelConfig): string {
  return `${modelName(c)}: ${c.kind === 'wavenet' ? describeWavenet(c) : describeParams(c)}`;
}
