/**
 * Export and import the complete state of a tfjs (4.22) AdamOptimizer, so that a resumed run's
 * next update is bit-identical to the one the uninterrupted run would have made.
 *
 * What tfjs keeps, and why getWeights/setWeights alone are not enough:
 * - Moments m and v live in slots indexed by *position* in the list given to applyGradients (the
 *   variable names are only labels). Slots are created lazily by the first applyGradients, but
 *   setWeights builds them directly, so importing into a fresh optimizer needs no warm-up step
 *   (a zero-gradient step would be wrong: it decays m and v and advances the beta powers).
 * - The bias corrections use accBeta1/accBeta2, float32 variables multiplied by beta once per
 *   step. setWeights recomputes them as pow(beta, iterations + 1), which differs in the last bits
 *   from the repeated product after most step counts (on cpu and wasm alike), so the exact
 *   values are exported and assigned back after setWeights.
 * - setWeights replaces the slot arrays without disposing the old slots; importAdam disposes them.
 * - The learning rate is a plain number read at every applyGradients; it is declared `protected`
 *   in the typings, so setAdamLearningRate assigns it. It is not part of the exported state: the
 *   schedule gives it per step.
 *
 * Exported keys (all F32; a checkpoint stores them as `adam/<key>`):
 *   iterations      [2]  [floor(it / 2^24), it mod 2^24], each exact in float32
 *   beta_powers     [2]  [accBeta1, accBeta2]
 *   hyper           [3]  [beta1, beta2, epsilon]: checked on import, a different optimizer refused
 *   slot/NNNN/m, slot/NNNN/v   first and second moment of the variable at position NNNN (4+ digits)
 */
import * as tf from '@tensorflow/tfjs';

export type F32Map = Map<string, { shape: number[]; data: Float32Array }>;

/** The private fields of tfjs 4.22's AdamOptimizer this module relies on. */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { variable: tf.Variable }[];
  accumulatedSecondMoment: { variable: tf.Variable }[];
}

const TWO24 = 2 ** 24;

function internals(opt: tf.AdamOptimizer): AdamInternals {
  const o = opt as unknown as AdamInternals;
  if (
    !(o.accBeta1 instanceof tf.Variable) ||
    !(o.accBeta2 instanceof tf.Variable) ||
    !Array.isArray(o.accumulatedFirstMoment) ||
    !Array.isArray(o.accumulatedSecondMoment)
  ) {
    throw new Error(
      `AdamOptimizer internals not found (tfjs ${tf.version_core}): adam-state.ts was written against tfjs 4.22`,
    );
  }
  return o;
}

export const slotKey = (index: number, which: 'm' | 'v') => `slot/${String(index).padStart(4, '0')}/${which}`;

export function setAdamLearningRate(opt: tf.AdamOptimizer, lr: number): void {
  if (!Number.isFinite(lr) || lr < 0) throw new Error(`learning rate must be a finite number >= 0, got ${lr}`);
  internals(opt).learningRate = lr;
}

export function getAdamLearningRate(opt: tf.AdamOptimizer): number {
  return internals(opt).learningRate;
}

export async function exportAdam(opt: tf.AdamOptimizer): Promise<F32Map> {
  const o = internals(opt);
  const weights = await opt.getWeights();
  const it = (await weights[0].tensor.data())[0];
  // getWeights makes a new iterations scalar on every call; the slots it returns are live.
  weights[0].tensor.dispose();
  const k = (weights.length - 1) / 2;
  if (!Number.isInteger(k))
    throw new Error(`AdamOptimizer.getWeights returned ${weights.length - 1} slot tensors, expected m and v pairs`);
  const b1 = (await o.accBeta1.data())[0];
  const b2 = (await o.accBeta2.data())[0];
  const out = adamCounters(it, Float32Array.of(b1, b2), o);
  for (let i = 0; i < k; i++) {
    for (const [which, w] of [
      ['m', weights[1 + i]],
      ['v', weights[1 + k + i]],
    ] as const) {
      // data() of a float32 tensor is a fresh Float32Array: the export shares nothing with tfjs.
      out.set(slotKey(i, which), { shape: [...w.tensor.shape], data: (await w.tensor.data()) as Float32Array });
    }
  }
  return out;
}

/**
 * Restore `state` into `opt` (fresh or used; its slots are replaced). Pass the variable list, in
 * the order given to applyGradients, to have every slot's shape checked against its variable:
 * moments are matched by position, so a reordered list would silently train with the wrong ones.
 */
export async function importAdam(
  opt: tf.AdamOptimizer,
  state: F32Map,
  variables?: readonly tf.Variable[],
): Promise<void> {
  const o = internals(opt);
  const shapes = variables?.map((v) => [...v.shape]);
  const { iterations: it, betaPowers: powers, slots } = readAdamState(state, o, shapes);
  const m: { name: string; tensor: tf.Tensor }[] = [];
  const v: { name: string; tensor: tf.Tensor }[] = [];
  slots.forEach(({ m: tm, v: tv }, i) => {
    const label = variables ? variables[i].name : String(i);
    m.push({ name: `${label}/m`, tensor: tf.tensor(tm.data, tm.shape, 'float32') });
    v.push({ name: `${label}/v`, tensor: tf.tensor(tv.data, tv.shape, 'float32') });
  });
  const iter = tf.scalar(it, 'int32');
  tf.dispose([...o.accumulatedFirstMoment, ...o.accumulatedSecondMoment].map((s) => s.variable));
  // setWeights makes each slot a variable sharing (and ref-counting) the tensor's data, so the
  // tensors made here can be released once it returns.
  await opt.setWeights([{ name: 'iter', tensor: iter }, ...m, ...v]);
  tf.dispose([iter, ...m.map((t) => t.tensor), ...v.map((t) => t.tensor)]);
  tf.tidy(() => {
    o.accBeta1.assign(tf.scalar(powers[0], 'float32'));
    o.accBeta2.assign(tf.scalar(powers[1], 'float32'));
  });
}

type Slot = { shape: number[]; data: Float32Array };

/** The step counter, beta powers and hyper-parameters of an exported state; moments are added by the caller. */
export function adamCounters(iterations: number, betaPowers: Float32Array, hyper: AdamHyperValues): F32Map {
  return new Map([
    ['iterations', { shape: [2], data: Float32Array.of(Math.floor(iterations / TWO24), iterations % TWO24) }],
    ['beta_powers', { shape: [2], data: Float32Array.from(betaPowers) }],
    ['hyper', { shape: [3], data: Float32Array.of(hyper.beta1, hyper.beta2, hyper.epsilon) }],
  ]);
}

export interface AdamHyperValues {
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * An exported state checked and unpacked, whichever engine will use it: iterations in range, the
 * same beta1/beta2/epsilon as `hyper` (a different optimizer is refused), slots contiguous and
 * nothing else; with `shapes`, each slot's shape checked against its variable's.
 */
export function readAdamState(
  state: F32Map,
  hyper: AdamHyperValues,
  shapes?: readonly number[][],
): { iterations: number; betaPowers: Float32Array; slots: { m: Slot; v: Slot }[] } {
  const get = (key: string, shape?: number[]) => {
    const t = state.get(key);
    if (!t) throw new Error(`optimizer state: missing '${key}'`);
    if (!(t.data instanceof Float32Array)) throw new Error(`optimizer state: '${key}' must be a Float32Array`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`optimizer state: '${key}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return t;
  };
  const [hi, lo] = get('iterations', [2]).data;
  const it = hi * TWO24 + lo;
  if (!Number.isInteger(hi) || !Number.isInteger(lo) || hi < 0 || lo < 0 || lo >= TWO24 || it > 2 ** 31 - 1) {
    throw new Error(`optimizer state: invalid iterations [${hi}, ${lo}]`);
  }
  const powers = get('beta_powers', [2]).data;
  const saved = get('hyper', [3]).data;
  const names = ['beta1', 'beta2', 'epsilon'] as const;
  names.forEach((name, i) => {
    if (Math.fround(hyper[name]) !== saved[i]) {
      throw new Error(
        `optimizer state was saved with ${name}=${saved[i]}, but this optimizer has ${name}=${hyper[name]}`,
      );
    }
  });

  let k = 0;
  while (state.has(slotKey(k, 'm'))) k++;
  const known = new Set(['iterations', 'beta_powers', 'hyper']);
  for (let i = 0; i < k; i++) known.add(slotKey(i, 'm')).add(slotKey(i, 'v'));
  for (const key of state.keys())
    if (!known.has(key))
      throw new Error(`optimizer state: unexpected key '${key}' (slots are ${k} contiguous from ${slotKey(0, 'm')})`);
  if (shapes && shapes.length !== k)
    throw new Error(`optimizer state has moments for ${k} variables, but ${shapes.length} were given`);
  const slots = Array.from({ length: k }, (_, i) => {
    const m = get(slotKey(i, 'm'), shapes?.[i]);
    return { m, v: get(slotKey(i, 'v'), shapes?.[i] ?? m.shape) };
  });
  return { iterations: it, betaPowers: powers, slots };
}
