import type { Ops, Tensor } from '../engine/ops.js';
import type { Params } from './layers.js';

export type CompressionName = 'max-pool' | 'mean-pool' | 'conv' | 'dilated-conv' | 'most-used';

/**
 * f_c of the paper (section 3.1): old memories [B, n, d] -> compressed [B, n/c, d].
 * `usage` [B, n] is the attention each old memory received (needed by most-used only).
 */
export function compress<T extends Tensor>(
  ops: Ops<T>,
  kind: CompressionName,
  old: T,
  c: number,
  p: { w?: T; b?: T },
  usage?: T,
): T {
  const [B, n, d] = old.shape;
  const m = n / c;
  switch (kind) {
    case 'max-pool':
      return ops.max(ops.reshape(old, [B, m, c, d]), [2]);
    case 'mean-pool':
      return ops.mean(ops.reshape(old, [B, m, c, d]), [2]);
    case 'conv':
      // kernel = stride = c: each window of c memories is one row of a single matmul.
      return ops.reshape(
        ops.add(ops.matMul(ops.reshape(old, [B * m, c * d]), need(p.w, 'compress.w')), need(p.b, 'compress.b')),
        [B, m, d],
      );
    case 'dilated-conv': {
      // Kernel c, dilation 2, stride c: output t reads the odd offsets of [window t-1, window t],
      // i.e. every other memory over the last 2c, so each output also sees the previous window.
      const prev = ops.pad(ops.slice(old, [0, 0, 0], [B, n - c, d]), [
        [0, 0],
        [c, 0],
        [0, 0],
      ]);
      const pairs = ops.concat([ops.reshape(prev, [B, m, c, d]), ops.reshape(old, [B, m, c, d])], 2); // [B, m, 2c, d]
      const odd = ops.slice(ops.reshape(pairs, [B, m, c, 2, d]), [0, 0, 0, 1, 0], [B, m, c, 1, d]);
      return ops.reshape(
        ops.add(ops.matMul(ops.reshape(odd, [B * m, c * d]), need(p.w, 'compress.w')), need(p.b, 'compress.b')),
        [B, m, d],
      );
    }
    case 'most-used': {
      if (!usage) throw new Error('most-used compression needs the attention usage of the old memories');
      return ops.topRows(old, usage, m);
    }
  }
}

function need<T>(t: T | undefined, name: string): T {
  if (!t) throw new Error(`compression parameter ${name} is missing`);
  return t;
}

/** g of the auto-encoding loss: compressed [B, m, d] -> reconstructed [B, m*c, d], a transposed conv. */
export function decompress<T extends Tensor>(ops: Ops<T>, comp: T, c: number, w: T, b: T): T {
  const [B, m, d] = comp.shape;
  return ops.reshape(ops.add(ops.matMul(ops.reshape(comp, [B * m, d]), w), b), [B, m * c, d]);
}

export function compressionParams<T extends Tensor>(p: Params<T>, layer: number): { w?: T; b?: T; dw?: T; db?: T } {
  return {
    w: p.get(`layers.${layer}.compress.w`),
    b: p.get(`layers.${layer}.compress.b`),
    dw: p.get(`layers.${layer}.decompress.w`),
    db: p.get(`layers.${layer}.decompress.b`),
  };
}
