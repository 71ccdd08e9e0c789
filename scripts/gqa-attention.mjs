#!/usr/bin/env node
// Would onnxruntime's fused attention speed up a transformer generation step? Times one
// com.microsoft.GroupQueryAttention (4 heads of 32, one query, a cache of <keys> positions plus the
// new one, an additive attention_bias as the relative-position term would need) on the CPU provider,
// one thread, and checks its output against a direct float64 computation.
//   node scripts/gqa-attention.mjs [keys=768] [--share]
// --share binds the caches as both past and present (the in-place cache mode) through preallocated
// outputs; otherwise only the attention output is fetched.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnx from 'onnx-proto';
import * as ort from 'onnxruntime-node';

const P = onnx.onnx;
const F = P.TensorProto.DataType.FLOAT;
const I32 = P.TensorProto.DataType.INT32;
const INT = P.AttributeProto.AttributeType.INT;
const T = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 768);
const share = process.argv.includes('--share');
const H = 4;
const dh = 32;
const hid = H * dh;
const cacheLen = share ? T + 1 : T;
const vi = (name, type, shape) => ({
  name,
  type: { tensorType: { elemType: type, shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
});

// Inputs 7-9 (rotary caches, position ids) are absent; attention_bias is input 10 in onnxruntime 1.30.
const graph = {
  name: 'gqa',
  node: [
    {
      opType: 'GroupQueryAttention',
      domain: 'com.microsoft',
      input: ['q', 'k', 'v', 'past_key', 'past_value', 'seqlens_k', 'total', '', '', '', 'bias'],
      output: ['out', 'present_key', 'present_value'],
      attribute: [
        { name: 'num_heads', type: INT, i: H },
        { name: 'kv_num_heads', type: INT, i: H },
      ],
    },
  ],
  input: [
    vi('q', F, [1, 1, hid]),
    vi('k', F, [1, 1, hid]),
    vi('v', F, [1, 1, hid]),
    vi('past_key', F, [1, H, cacheLen, dh]),
    vi('past_value', F, [1, H, cacheLen, dh]),
    vi('seqlens_k', I32, [1]),
    vi('total', I32, []),
    vi('bias', F, [1, H, 1, T + 1]),
  ],
  output: [
    vi('out', F, [1, 1, hid]),
    vi('present_key', F, [1, H, cacheLen, dh]),
    vi('present_value', F, [1, H, cacheLen, dh]),
  ],
};
const model = {
  irVersion: 8,
  opsetImport: [
    { domain: '', version: 17 },
    { domain: 'com.microsoft', version: 1 },
  ],
  graph,
};
const file = path.join(os.tmpdir(), `gqa-attention-${process.pid}.onnx`);
fs.writeFileSync(file, P.ModelProto.encode(model).finish());
const session = await ort.InferenceSession.create(file, {
  intraOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
});
fs.rmSync(file, { force: true });

let seed = 1;
const rnd = (n) =>
  Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2);
const tensor = (data, shape) => new ort.Tensor('float32', data, shape);
const pk = rnd(H * cacheLen * dh);
const pv = rnd(H * cacheLen * dh);
const feeds = {
  q: tensor(rnd(hid), [1, 1, hid]),
  k: tensor(rnd(hid), [1, 1, hid]),
  v: tensor(rnd(hid), [1, 1, hid]),
  past_key: tensor(pk, [1, H, cacheLen, dh]),
  past_value: tensor(pv, [1, H, cacheLen, dh]),
  seqlens_k: new ort.Tensor('int32', Int32Array.of(T), [1]),
  total: new ort.Tensor('int32', Int32Array.of(T + 1), []),
  bias: tensor(rnd(H * (T + 1)), [1, H, 1, T + 1]),
};
const fetches = share
  ? { out: tensor(new Float32Array(hid), [1, 1, hid]), present_key: feeds.past_key, present_value: feeds.past_value }
  : ['out'];
const out = (await session.run(feeds, fetches)).out.data;

// softmax(q k / sqrt(dh) + bias) v over [cache; new], per head, in float64.
const [q, k, v, bias] = [feeds.q.data, feeds.k.data, feeds.v.data, feeds.bias.data];
let maxErr = 0;
for (let h = 0; h < H; h++) {
  const key = (j, c) => (j < T ? pk[(h * cacheLen + j) * dh + c] : k[h * dh + c]);
  const val = (j, c) => (j < T ? pv[(h * cacheLen + j) * dh + c] : v[h * dh + c]);
  const s = Array.from({ length: T + 1 }, (_, j) => {
    let d = 0;
    for (let c = 0; c < dh; c++) d += q[h * dh + c] * key(j, c);
    return d / Math.sqrt(dh) + bias[h * (T + 1) + j];
  });
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  for (let c = 0; c < dh; c++) {
    let o = 0;
    for (let j = 0; j <= T; j++) o += (e[j] / z) * val(j, c);
    maxErr = Math.max(maxErr, Math.abs(o - out[h * dh + c]));
  }
}

for (let i = 0; i < 300; i++) await session.run(feeds, fetches);
const times = [];
for (let round = 0; round < 5; round++) {
  const n = 1000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await session.run(feeds, fetches);
  times.push(((performance.now() - t0) / n) * 1000);
}
times.sort((a, b) => a - b);
console.log(
  `GroupQueryAttention, ${H} heads of ${dh}, ${T + 1} keys, attention_bias, ${share ? 'shared past/present' : 'output only'}: ` +
    `${times[0].toFixed(1)}-${times[2].toFixed(1)} µs per run (best-median of 5 x 1,000); ` +
    `max |error| against float64 ${maxErr.toExponential(1)}`,
);
await session.release();
