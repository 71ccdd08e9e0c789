// Compares two output folders of scripts/compare-revisions.sh: safetensors tensors (metadata aside),
// evaluation NLLs and generated WAV bytes. Exits 1 on any difference.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [a, b] = process.argv.slice(2);
let failed = false;
const report = (ok, what) => {
  console.log(`${ok ? 'same     ' : 'DIFFERENT'}  ${what}`);
  if (!ok) failed = true;
};

function tensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  delete header.__metadata__;
  return { header: JSON.stringify(header), body: buf.subarray(8 + n) };
}

for (const model of ['ct-tiny', 'wavenet-tiny']) {
  for (const f of ['weights.safetensors', 'checkpoint.safetensors']) {
    const x = tensors(path.join(a, model, f));
    const y = tensors(path.join(b, model, f));
    report(x.header === y.header && Buffer.compare(x.body, y.body) === 0, `${model}/${f} tensors`);
  }
  for (const engine of ['onnxruntime', 'tfjs']) {
    const read = (dir) => JSON.parse(fs.readFileSync(path.join(dir, `${model}.eval-${engine}.json`), 'utf8')).nats;
    const [x, y] = [read(a), read(b)];
    report(Math.abs(x - y) <= 1e-6, `${model} test NLL on ${engine}: ${x} vs ${y}`);
  }
  for (const k of [1, 2]) {
    const hash = (dir) => crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, `${model}-gen-${k}.wav`)));
    report(hash(a).digest('hex') === hash(b).digest('hex'), `${model}-gen-${k}.wav bytes`);
  }
}
process.exit(failed ? 1 : 0);
