import fs from 'node:fs';
import type { Command } from 'commander';
import YAML from 'yaml';
import { backendSummary, type BackendName, initBackend } from '../engine/backend.js';
import { saveModel } from '../models/model-files.js';
import { initParams } from '../models/param-spec.js';
import {
  ALL_PRESETS,
  describeModel,
  familyOf,
  type ModelConfig,
  modelPreset,
  paramSpecOf,
  parseModelConfig,
} from '../models/registry.js';
import { checkBackendFlag, UsageError } from './options.js';

export function registerModel(program: Command): void {
  program
    .command('model')
    .summary('inspect a model config: parameters, attention span, FLOPs; optionally write initial weights')
    .description(
      'Show a model config (Compressive Transformer, Transformer-XL or WaveNet) as it will run: layers, ' +
        'widths, segment and memory lengths or receptive field, parameter count, FLOPs per sample, and the tfjs ' +
        'backend that would train it (and why). With --save, write seeded initial weights as ' +
        'weights.safetensors + config.json (see docs/safetensors.md).\n\n' +
        `Presets: ${ALL_PRESETS.join(', ')}`,
    )
    .option('-p, --preset <name>', 'a named config', 'ct-cpu')
    .option('-c, --config <file>', 'a JSON or YAML config (overrides --preset)')
    .option('--backend <name>', 'auto, tensorflow, wasm or cpu', 'auto')
    .option('--save <dir>', 'write initial weights and config here')
    .option('--json', 'print the resolved config as JSON')
    .action(async (o: { preset: string; config?: string; backend: string; save?: string; json?: boolean }) => {
      const cfg = loadConfig(o);
      if (o.json) {
        console.log(JSON.stringify(cfg, null, 2));
        return;
      }
      checkBackendFlag(o.backend);
      const info = await initBackend(o.backend as BackendName | 'auto');
      console.log(describeModel(cfg));
      for (const line of familyOf(cfg).details(cfg)) console.log(`  ${line}`);
      console.log(`  ${backendSummary(info)}`);
      if (o.save) {
        const specs = paramSpecOf(cfg);
        const values = initParams(specs, cfg.seed, cfg.initStd);
        saveModel(o.save, cfg, new Map(specs.map((s) => [s.name, { shape: s.shape, data: values.get(s.name)! }])));
        console.log(`  initial weights (seed ${cfg.seed}) written to ${o.save}`);
      }
    });
}

export function loadConfig(o: { preset: string; config?: string }): ModelConfig {
  if (!o.config) return modelPreset(o.preset);
  let text: string;
  try {
    text = fs.readFileSync(o.config, 'utf8');
  } catch {
    throw new UsageError(`--config ${o.config} cannot be read`);
  }
  let raw: unknown;
  try {
    raw = o.config.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new UsageError(
      `--config ${o.config} is not valid ${o.config.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
  // A config file may start from a preset and override fields: {preset: ct-cpu, layers: 6}.
  const obj = (raw ?? {}) as Record<string, unknown>;
  const base = typeof obj.preset === 'string' ? modelPreset(obj.preset) : {};
  const { preset: _p, ...rest } = obj;
  return parseModelConfig({ ...base, ...rest }, o.config);
}
