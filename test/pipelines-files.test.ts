import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline } from '../src/cli/pipeline-file.js';
import { modelPreset } from '../src/models/registry.js';
import { REPO } from './helpers.js';

test('every shipped pipeline parses and names known presets', () => {
  const dir = path.join(REPO, 'pipelines');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const f of files) {
    const p = loadPipeline(path.join(dir, f));
    for (const step of p.steps)
      if ('train' in step && step.train.model)
        assert.doesNotThrow(() => modelPreset(step.train.model!), `${f}: ${step.train.model}`);
  }
});
