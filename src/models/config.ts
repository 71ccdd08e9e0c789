/**
 * Configuration of the Compressive Transformer and of Transformer-XL, which is the same model with
 * no compressed memory (docs/models.md). A config that contradicts itself is rejected here,
 * with every problem listed at once, rather than surfacing later as a shape error mid-training.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { NUM_CODES } from '../util/codes.js';

export const COMPRESSIONS = ['max-pool', 'mean-pool', 'conv', 'dilated-conv', 'most-used'] as const;
export const AUX_LOSSES = ['attention', 'autoencode', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];
export type AuxLoss = (typeof AUX_LOSSES)[number];

/** Compression functions with weights; only these give an auxiliary loss something to train. */
export const TRAINABLE_COMPRESSIONS: readonly Compression[] = ['conv', 'dilated-conv'];

export class ConfigError extends UserError {}

function got(input: unknown): string {
  return input === undefined ? 'is required' : `got ${JSON.stringify(input)}`;
}

function int(min: number) {
  const msg = (iss: { input?: unknown }) =>
    iss.input === undefined ? 'is required' : `must be an integer >= ${min}, ${got(iss.input)}`;
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg });
}

function oneOf<T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) =>
      iss.input === undefined
        ? 'is required'
        : `must be one of ${values.map((v) => `'${v}'`).join(', ')}, ${got(iss.input)}`,
  });
}

const Base = z.strictObject({
  kind: z.literal('transformer', { error: (iss) => `must be 'transformer', ${got(iss.input)}` }),
  vocab: z.literal(NUM_CODES, { error: (iss) => `must be 256 (8-bit mu-law codes), ${got(iss.input)}` }),
  layers: int(1),
  dModel: int(1),
  heads: int(1),
  dHead: int(1),
  dFF: int(1),
  /** n_s: the segment (window) each step attends from. */
  segment: int(1),
  /** n_m: uncompressed memory, carried across segments. */
  memory: int(0),
  /** n_cm: compressed memory; 0 makes the model Transformer-XL. */
  compressedMemory: int(0),
  /** c: how many memories are compressed into one. */
  compressionRate: int(1),
  compression: oneOf(COMPRESSIONS),
  auxLoss: oneOf(AUX_LOSSES),
  dropout: z
    .number({ error: (iss) => `must be a number in [0, 1), ${got(iss.input)}` })
    .min(0, { error: (iss) => `must be a number in [0, 1), ${got(iss.input)}` })
    .lt(1, { error: (iss) => `must be a number in [0, 1), ${got(iss.input)}` })
    .default(0),
  initStd: z
    .number({ error: (iss) => `must be a positive number, ${got(iss.input)}` })
    .positive({ error: (iss) => `must be a positive number, ${got(iss.input)}` })
    .default(0.02),
  seed: z
    .number({ error: (iss) => `must be a safe integer, ${got(iss.input)}` })
    .int({ error: (iss) => `must be a safe integer, ${got(iss.input)}` })
    .default(0),
});

export const TransformerConfig = Base.superRefine((c, ctx) => {
  const fail = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (c.compressedMemory > 0) {
    if (c.compressionRate < 2) {
      fail(
        'compressionRate',
        `compressionRate (${c.compressionRate}) must be >= 2 when compressedMemory > 0: ` +
          'a rate of 1 stores copies, not compressions',
      );
    } else if (c.segment % c.compressionRate !== 0) {
      // Each step pushes exactly n_s memories out, and f_c turns them into n_s / c slots.
      fail('segment', `segment (${c.segment}) must be a multiple of compressionRate (${c.compressionRate})`);
    }
    if (c.memory === 0) {
      fail(
        'memory',
        `memory must be > 0 when compressedMemory (${c.compressedMemory}) > 0: ` +
          'compressed memory is filled from memories pushed out of memory',
      );
    }
    if (c.auxLoss !== 'none' && !TRAINABLE_COMPRESSIONS.includes(c.compression)) {
      fail(
        'auxLoss',
        `compression '${c.compression}' has no parameters for auxLoss '${c.auxLoss}' to train; ` +
          `use auxLoss 'none' or compression ${TRAINABLE_COMPRESSIONS.map((x) => `'${x}'`).join(' or ')}`,
      );
    }
  } else if (c.auxLoss !== 'none') {
    fail(
      'auxLoss',
      `auxLoss '${c.auxLoss}' needs compressedMemory > 0 (compressedMemory is 0, i.e. Transformer-XL); ` +
        "use auxLoss 'none'",
    );
  }
});
export type TransformerConfig = z.infer<typeof TransformerConfig>;
/** What a config file may say: the defaulted fields are optional. */
export type TransformerConfigInput = z.input<typeof TransformerConfig>;

function describeIssue(iss: z.core.$ZodIssue): string {
  if (iss.code === 'unrecognized_keys') {
    const keys = iss.keys.map((k) => `'${k}'`).join(', ');
    return `unknown field${iss.keys.length > 1 ? 's' : ''} ${keys} (known: ${Object.keys(Base.shape).join(', ')})`;
  }
  if (iss.path.length === 0) return iss.code === 'invalid_type' ? 'expected a JSON object' : iss.message;
  return `${iss.path.join('.')}: ${iss.message}`;
}

/** Parse and check a config; throws one ConfigError listing every problem, each naming its field. */
export function parseTransformerConfig(json: unknown, source = 'config'): TransformerConfig {
  const r = TransformerConfig.safeParse(json);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `  - ${describeIssue(i)}`);
  throw new ConfigError(
    `${source}: invalid transformer config (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n` +
      problems.join('\n'),
  );
}

/** Transformer-XL is the Compressive Transformer with no compressed memory. */
export function isTransformerXL(c: TransformerConfig): boolean {
  return c.compressedMemory === 0;
}

const common = { kind: 'transformer', vocab: NUM_CODES, dropout: 0, initStd: 0.02, seed: 0 } as const;

const ctTiny = {
  ...common,
  layers: 2,
  dModel: 32,
  heads: 2,
  dHead: 16,
  dFF: 64,
  segment: 16,
  memory: 16,
  compressedMemory: 8,
  compressionRate: 4,
  compression: 'conv',
  auxLoss: 'attention',
} as const;
/** The quick start's model: minutes on two CPU cores. */
const ctSmall = {
  ...common,
  layers: 2,
  dModel: 64,
  heads: 2,
  dHead: 32,
  dFF: 256,
  segment: 64,
  memory: 64,
  compressedMemory: 32,
  compressionRate: 4,
  compression: 'conv',
  auxLoss: 'attention',
} as const;
const ctCpu = {
  ...common,
  layers: 4,
  dModel: 128,
  heads: 4,
  dHead: 32,
  dFF: 512,
  segment: 256,
  memory: 256,
  compressedMemory: 256,
  compressionRate: 4,
  compression: 'conv',
  auxLoss: 'attention',
} as const;
/**
 * The paper's speech scale (Rae et al. 2020, speech experiments): 20 layers, c = 4, window 768, memory 768 +
 * compressed memory 768, "about 40M parameters". These figures do not fix the width; with
 * dFF = 4 dModel and heads * dHead = dModel, the parameter list of param-spec.ts counts
 * 340 d^2 + 754 d + 256 for this config, so d = 344 (8 heads x 43) gives 40,493,872 parameters
 * (9,473,760 of them, 4 d^2 + d per layer, in the compression convolutions). txl-paper keeps the
 * same widths, so it differs only in memory; without compression weights it has 31,020,112.
 */
const ctPaper = {
  ...common,
  layers: 20,
  dModel: 344,
  heads: 8,
  dHead: 43,
  dFF: 1376,
  segment: 768,
  memory: 768,
  compressedMemory: 768,
  compressionRate: 4,
  compression: 'conv',
  auxLoss: 'attention',
} as const;

// The paper's TXL baselines get the CT's whole attention span as plain memory: n_m + n_cm.
const raw: Record<string, TransformerConfigInput> = {
  'ct-tiny': ctTiny,
  'txl-tiny': { ...ctTiny, compressedMemory: 0, auxLoss: 'none' },
  'ct-small': ctSmall,
  'txl-small': { ...ctSmall, compressedMemory: 0, memory: ctSmall.memory + ctSmall.compressedMemory, auxLoss: 'none' },
  'ct-cpu': ctCpu,
  'txl-cpu': { ...ctCpu, compressedMemory: 0, memory: ctCpu.memory + ctCpu.compressedMemory, auxLoss: 'none' },
  'ct-paper': ctPaper,
  'txl-paper': { ...ctPaper, compressedMemory: 0, memory: ctPaper.memory + ctPaper.compressedMemory, auxLoss: 'none' },
};

export const PRESETS: Readonly<Record<string, TransformerConfig>> = Object.freeze(
  Object.fromEntries(
    Object.entries(raw).map(([name, c]) => [name, Object.freeze(parseTransformerConfig(c, `preset '${name}'`))]),
  ),
);

/** A fresh copy of a preset, so callers may modify it without touching the table. */
export function preset(name: string): TransformerConfig {
  const c = Object.prototype.hasOwnProperty.call(PRESETS, name) ? PRESETS[name] : undefined;
  if (!c)
    throw new ConfigError(`unknown transformer preset '${name}'; known presets: ${Object.keys(PRESETS).join(', ')}`);
  return { ...c };
}
