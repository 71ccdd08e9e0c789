import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConfigError,
  isTransformerXL,
  parseTransformerConfig,
  preset,
  PRESETS,
  type TransformerConfig,
} from '../src/models/config.js';
import { describeParams, initParams, paramCount, transformerParamSpec } from '../src/models/param-spec.js';

const NAMES = ['ct-tiny', 'txl-tiny', 'ct-small', 'txl-small', 'ct-cpu', 'txl-cpu', 'ct-paper', 'txl-paper'];

/** The parameter count written from the list in the brief, independently of param-spec.ts. */
function handCount(c: TransformerConfig): number {
  const { layers: L, dModel: d, heads: H, dHead: dh, dFF: f, compressionRate: r } = c;
  const hd = H * dh;
  const conv = c.compressedMemory > 0 && (c.compression === 'conv' || c.compression === 'dilated-conv');
  const perLayer =
    2 * d + // ln1
    4 * d * hd + // wq wk wv wr
    2 * H * dh + // u v
    hd * d + // wo
    2 * d + // ln2
    d * f +
    f +
    f * d +
    d + // ffn
    (conv ? r * d * d + d : 0) +
    (conv && c.auxLoss === 'autoencode' ? d * r * d + r * d : 0);
  return 256 * d + L * perLayer + 2 * d + d * 256 + 256;
}

function base(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...PRESETS['ct-tiny'], ...over };
}

function problems(json: unknown): string {
  try {
    parseTransformerConfig(json, 'run.json');
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.match(e.message, /^run\.json: /);
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(json)}`);
}

test('every preset parses and has the documented memory layout', () => {
  assert.deepEqual(Object.keys(PRESETS), NAMES);
  for (const name of NAMES) {
    const c = preset(name);
    assert.deepEqual(parseTransformerConfig(JSON.parse(JSON.stringify(c))), c, name);
    assert.equal(c.seed, 0);
    assert.equal(c.dropout, 0);
    assert.equal(c.initStd, 0.02);
    assert.equal(isTransformerXL(c), name.startsWith('txl'), name);
  }
  // TXL baselines get the CT's whole span, n_m + n_cm, as plain memory.
  for (const size of ['tiny', 'small', 'cpu', 'paper']) {
    const ct = PRESETS[`ct-${size}`];
    const txl = PRESETS[`txl-${size}`];
    assert.equal(txl.auxLoss, 'none');
    assert.equal(txl.compressedMemory, 0);
    if (size !== 'tiny') assert.equal(txl.memory, ct.memory + ct.compressedMemory);
    assert.deepEqual(
      { ...txl, memory: 0, compressedMemory: 0, auxLoss: 0 },
      { ...ct, memory: 0, compressedMemory: 0, auxLoss: 0 },
    );
  }
  const p = PRESETS['ct-paper'];
  assert.deepEqual([p.layers, p.segment, p.memory, p.compressedMemory, p.compressionRate], [20, 768, 768, 768, 4]);
  assert.equal(p.heads * p.dHead, p.dModel);
  assert.equal(p.dFF, 4 * p.dModel);
});

const paperCount = paramCount(transformerParamSpec(PRESETS['ct-paper']));
const txlPaperCount = paramCount(transformerParamSpec(PRESETS['txl-paper']));
test(`ct-paper has about 40M parameters (${paperCount}); txl-paper ${txlPaperCount}`, () => {
  assert.ok(paperCount >= 38e6 && paperCount <= 42e6, `${paperCount}`);
});

test('parameter counts match the hand formula', () => {
  for (const name of NAMES)
    assert.equal(paramCount(transformerParamSpec(PRESETS[name])), handCount(PRESETS[name]), name);
  // Worked out on paper for ct-cpu (d 128, 4 layers, f 512, c 4): 4 * (17 d^2 + 12 d) + 514 d + 256.
  assert.equal(paramCount(transformerParamSpec(PRESETS['ct-cpu'])), 1_186_304);
  assert.equal(paramCount(transformerParamSpec(PRESETS['txl-cpu'])), 923_648);
  const ae = parseTransformerConfig(base({ auxLoss: 'autoencode', dModel: 24, heads: 3, dHead: 5 }));
  assert.equal(paramCount(transformerParamSpec(ae)), handCount(ae));
  assert.equal(
    describeParams(PRESETS['ct-cpu']),
    '4 layers, d 128, 4 heads x 32, ffn 512: 1.19M parameters (0.26M in compression)',
  );
  assert.equal(describeParams(PRESETS['txl-cpu']), '4 layers, d 128, 4 heads x 32, ffn 512: 0.92M parameters');
});

test('parameter list: order, shapes, init and the compression flag', () => {
  const c = parseTransformerConfig(
    base({ layers: 1, dModel: 6, heads: 2, dHead: 5, dFF: 7, compressionRate: 4, auxLoss: 'autoencode' }),
  );
  const got = transformerParamSpec(c).map(
    (s) => `${s.name} ${s.shape.join('x')} ${s.init}${s.compression ? ' C' : ''}`,
  );
  assert.deepEqual(got, [
    'embed.weight 256x6 normal',
    'layers.0.ln1.gamma 6 ones',
    'layers.0.ln1.beta 6 zeros',
    'layers.0.attn.wq 6x10 normal',
    'layers.0.attn.wk 6x10 normal',
    'layers.0.attn.wv 6x10 normal',
    'layers.0.attn.wr 6x10 normal',
    'layers.0.attn.u 2x5 zeros',
    'layers.0.attn.v 2x5 zeros',
    'layers.0.attn.wo 10x6 normal',
    'layers.0.ln2.gamma 6 ones',
    'layers.0.ln2.beta 6 zeros',
    'layers.0.ff.w1 6x7 normal',
    'layers.0.ff.b1 7 zeros',
    'layers.0.ff.w2 7x6 normal',
    'layers.0.ff.b2 6 zeros',
    'layers.0.compress.w 24x6 normal C',
    'layers.0.compress.b 6 zeros C',
    'layers.0.decompress.w 6x24 normal C',
    'layers.0.decompress.b 24 zeros C',
    'ln_f.gamma 6 ones',
    'ln_f.beta 6 zeros',
    'head.weight 6x256 normal',
    'head.bias 256 zeros',
  ]);
  // Parameter-free compressions and TXL have no compression network.
  for (const over of [
    { compression: 'max-pool', auxLoss: 'none' },
    { compression: 'most-used', auxLoss: 'none' },
    { compressedMemory: 0, auxLoss: 'none' },
  ]) {
    assert.ok(
      !transformerParamSpec(parseTransformerConfig(base(over))).some((s) => s.compression || /compress/.test(s.name)),
      JSON.stringify(over),
    );
  }
});

test('each cross-field rule gives its named message', () => {
  assert.match(
    problems(base({ segment: 768, compressionRate: 5 })),
    /segment \(768\) must be a multiple of compressionRate \(5\)/,
  );
  assert.match(
    problems(base({ compressionRate: 1 })),
    /compressionRate: compressionRate \(1\) must be >= 2 when compressedMemory > 0/,
  );
  assert.match(problems(base({ memory: 0 })), /memory: memory must be > 0 when compressedMemory \(8\) > 0/);
  assert.match(
    problems(base({ compressedMemory: 0, auxLoss: 'attention' })),
    /auxLoss: auxLoss 'attention' needs compressedMemory > 0/,
  );
  assert.match(
    problems(base({ compressedMemory: 0, auxLoss: 'autoencode' })),
    /auxLoss 'autoencode' needs compressedMemory > 0/,
  );
  for (const comp of ['max-pool', 'mean-pool', 'most-used']) {
    assert.match(
      problems(base({ compression: comp })),
      new RegExp(`compression '${comp}' has no parameters for auxLoss 'attention' to train`),
    );
  }
  // Things the rules deliberately allow.
  parseTransformerConfig(base({ memory: 4, segment: 16 })); // memory shorter than the segment
  parseTransformerConfig(base({ compressedMemory: 3 })); // not a multiple of segment / c
  parseTransformerConfig(base({ dModel: 40 })); // dModel != heads * dHead
  parseTransformerConfig(base({ compression: 'dilated-conv', auxLoss: 'autoencode' }));
  parseTransformerConfig(
    base({ compressedMemory: 0, compressionRate: 1, compression: 'max-pool', auxLoss: 'none', segment: 7 }),
  );
  // Two cross-field problems at once are both reported.
  const both = problems(base({ memory: 0, compression: 'mean-pool' }));
  assert.match(both, /2 problems/);
  assert.match(both, /memory: /);
  assert.match(both, /auxLoss: /);
});

test('field errors name every field, the value, and unknown fields', () => {
  const msg = problems(
    base({ layers: 0, dHead: 2.5, compression: 'avg', dropout: 1, initStd: 0, seed: 'x', extra: 1, other: 2 }),
  );
  assert.match(msg, /layers: must be an integer >= 1, got 0/);
  assert.match(msg, /dHead: must be an integer >= 1, got 2\.5/);
  assert.match(msg, /compression: must be one of 'max-pool', .*got "avg"/);
  assert.match(msg, /dropout: must be a number in \[0, 1\), got 1/);
  assert.match(msg, /initStd: must be a positive number, got 0/);
  assert.match(msg, /seed: must be a safe integer, got "x"/);
  assert.match(msg, /unknown fields 'extra', 'other'/);
  assert.match(problems(base({ memory: -1 })), /memory: must be an integer >= 0, got -1/);
  assert.match(problems(base({ vocab: 65536 })), /vocab: must be 256/);
  const { heads: _h, ...noHeads } = base();
  assert.match(problems(noHeads), /heads: is required/);
  assert.match(problems([1, 2]), /expected a JSON object/);
  assert.match(problems(null), /expected a JSON object/);
});

test('defaults fill dropout, initStd and seed', () => {
  const { dropout: _d, initStd: _i, seed: _s, ...rest } = base();
  const c = parseTransformerConfig(rest);
  assert.deepEqual([c.dropout, c.initStd, c.seed], [0, 0.02, 0]);
});

test('unknown preset lists the known ones; presets are copies', () => {
  assert.throws(
    () => preset('ct-huge'),
    (e: unknown) =>
      e instanceof ConfigError && /'ct-huge'/.test(e.message) && NAMES.every((n) => e.message.includes(n)),
  );
  assert.throws(() => preset('toString'), ConfigError);
  const c = preset('ct-cpu');
  c.layers = 99;
  assert.equal(preset('ct-cpu').layers, 4);
});

test('initParams is deterministic, seed-dependent and per-name independent', () => {
  const specs = transformerParamSpec(PRESETS['ct-tiny']);
  const a = initParams(specs, 7, 0.02);
  const b = initParams(specs, 7, 0.02);
  const c = initParams(specs, 8, 0.02);
  for (const s of specs) {
    assert.deepEqual(a.get(s.name), b.get(s.name), s.name);
    if (s.init === 'normal') assert.notDeepEqual(a.get(s.name), c.get(s.name), s.name);
  }
  // Different parameters of the same shape get different values.
  assert.notDeepEqual(a.get('layers.0.attn.wq'), a.get('layers.0.attn.wk'));
  assert.notDeepEqual(a.get('layers.0.attn.wq'), a.get('layers.1.attn.wq'));
  // Removing the compression network (max-pool) leaves every other parameter's values unchanged.
  const plain = initParams(
    transformerParamSpec(parseTransformerConfig(base({ compression: 'max-pool', auxLoss: 'none' }))),
    7,
    0.02,
  );
  assert.ok(plain.size < a.size);
  for (const [name, v] of plain) assert.deepEqual(v, a.get(name), name);
});

test('initParams: exact ones and zeros, normal statistics', () => {
  const std = 0.05;
  const p = initParams(
    [
      { name: 'g', shape: [3, 5], init: 'ones', compression: false },
      { name: 'z', shape: [7], init: 'zeros', compression: false },
      { name: 'w', shape: [512, 513], init: 'normal', compression: false },
      { name: 'odd', shape: [3], init: 'normal', compression: false },
    ],
    123,
    std,
  );
  assert.deepEqual([...p.get('g')!], new Array(15).fill(1));
  assert.deepEqual([...p.get('z')!], new Array(7).fill(0));
  assert.ok(p.get('odd')!.every((x) => x !== 0 && Number.isFinite(x)));
  const w = p.get('w')!;
  assert.equal(w.length, 512 * 513);
  let sum = 0,
    sq = 0,
    within1 = 0,
    beyond3 = 0;
  for (const x of w) {
    sum += x;
    sq += x * x;
    if (Math.abs(x) < std) within1++;
    if (Math.abs(x) > 3 * std) beyond3++;
  }
  const mean = sum / w.length;
  const sd = Math.sqrt(sq / w.length - mean * mean);
  // n = 262656: the standard error of the mean is std / 512, of the sd about std / 725.
  assert.ok(Math.abs(mean) < (5 * std) / 512, `mean ${mean}`);
  assert.ok(Math.abs(sd - std) < (5 * std) / 725, `sd ${sd}`);
  // Shape, not just moments: N(0,1) has 68.27% within 1 sd and 0.27% beyond 3 sd.
  assert.ok(Math.abs(within1 / w.length - 0.6827) < 0.005, `within 1 sd ${within1 / w.length}`);
  assert.ok(Math.abs(beyond3 / w.length - 0.0027) < 0.0006, `beyond 3 sd ${beyond3 / w.length}`);
  // Neighbours (the two halves of a Box-Muller pair) are uncorrelated; SE of r is 1 / 512.
  let lag = 0;
  for (let i = 0; i + 1 < w.length; i++) lag += (w[i] - mean) * (w[i + 1] - mean);
  const r = lag / (w.length - 1) / (sd * sd);
  assert.ok(Math.abs(r) < 5 / 512, `lag-1 correlation ${r}`);
  assert.throws(() => initParams([], 1.5, std), /seed/);
  assert.throws(() => initParams([], 1, 0), /std/);
});
