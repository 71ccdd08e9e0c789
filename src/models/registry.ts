/**
 * The model families, registered once. Code outside models/ reaches a model through `familyOf`;
 * adding a family is implementing `ModelFamily` (family.ts) and listing it here.
 */
import { ConfigError, type TransformerConfig } from './config.js';
import type { ModelFamily } from './family.js';
import type { ParamSpec } from './param-spec.js';
import { transformerFamily } from './transformer-family.js';
import type { WavenetConfig } from './wavenet-config.js';
import { wavenetFamily } from './wavenet-family.js';

export type ModelConfig = TransformerConfig | WavenetConfig;

const FAMILIES = { transformer: transformerFamily, wavenet: wavenetFamily } as const;

/** The family a config belongs to, typed for that config. */
export function familyOf<C extends ModelConfig>(cfg: C): ModelFamily<C> {
  // Each entry is the family of configs whose kind is its key: the one place that relation is used.
  return FAMILIES[cfg.kind] as unknown as ModelFamily<C>;
}

export const ALL_PRESETS: readonly string[] = Object.values(FAMILIES).flatMap((f) => Object.keys(f.presets));

export function parseModelConfig(json: unknown, source = 'config'): ModelConfig {
  // A config without a kind is a transformer: configs written before WaveNet existed have none.
  const given = (json as { kind?: unknown } | null)?.kind;
  const kind = given === undefined ? 'transformer' : given;
  if (typeof kind === 'string' && Object.prototype.hasOwnProperty.call(FAMILIES, kind))
    return FAMILIES[kind as keyof typeof FAMILIES].parse(json, source);
  const known = Object.keys(FAMILIES)
    .map((k) => `'${k}'`)
    .join(' or ');
  throw new ConfigError(`${source}: kind must be ${known}, got ${JSON.stringify(kind)}`);
}

export function modelPreset(name: string): ModelConfig {
  for (const f of Object.values(FAMILIES))
    if (Object.prototype.hasOwnProperty.call(f.presets, name)) return { ...f.presets[name] };
  throw new ConfigError(`unknown preset '${name}'; known presets: ${ALL_PRESETS.join(', ')}`);
}

export function paramSpecOf(c: ModelConfig): ParamSpec[] {
  return familyOf(c).paramSpec(c);
}

/** The model's name as the paper's comparison uses it. */
export function modelName(c: ModelConfig): string {
  return familyOf(c).name(c);
}

export function describeModel(c: ModelConfig): string {
  return `${modelName(c)}: ${familyOf(c).describe(c)}`;
}

/**
 * The config as a transformer, for analyses only a model with attention memory has (the paper's
 * attention-by-age): a WaveNet is refused with a message naming `what`.
 */
export function withAttentionMemory(c: ModelConfig, what: string): TransformerConfig {
  if (c.kind !== 'transformer') throw new ConfigError(`${what}: a ${modelName(c)} has no attention memory to analyse`);
  return c;
}
