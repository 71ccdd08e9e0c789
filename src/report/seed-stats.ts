/**
 * Mean and spread of a model's figures over training seeds, and a ranking that says when a lead is
 * smaller than what another seed could change: a 0.02-bit difference between two single runs is
 * not a finding.
 */

export interface Spread {
  n: number;
  mean: number;
  /** sample standard deviation (n - 1); null for a single value */
  sd: number | null;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread | null {
  if (!values.length) return null;
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : null;
  return { n, mean, sd, min: Math.min(...values), max: Math.max(...values) };
}

/** "4.702 ± 0.013 (n = 3, 4.690–4.716)", or the bare value for one seed. */
export function formatSpread(s: Spread | null, digits = 3): string {
  if (!s) return '–';
  if (s.sd === null) return s.mean.toFixed(digits);
  return (
    `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)} ` +
    `(n = ${s.n}, ${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
  );
}

export interface RankedGap {
  name: string;
  gap: number;
  /** gap over its standard error, when both models have two or more seeds */
  z: number | null;
  separated: boolean | null;
}

/**
 * Each model's gap to the lowest mean. A gap counts as a ranking when it exceeds twice its standard
 * error (Welch: sqrt(sd_a^2/n_a + sd_b^2/n_b)); with a single seed on either side nothing can be said.
 */
export function rankByMean(
  groups: readonly { name: string; spread: Spread }[],
): { best: string; mean: number; others: RankedGap[] } | null {
  if (!groups.length) return null;
  const sorted = [...groups].sort((a, b) => a.spread.mean - b.spread.mean);
  const best = sorted[0];
  const others = sorted.slice(1).map((g) => {
    const gap = g.spread.mean - best.spread.mean;
    if (best.spread.sd === null || g.spread.sd === null) return { name: g.name, gap, z: null, separated: null };
    const se = Math.sqrt(best.spread.sd ** 2 / best.spread.n + g.spread.sd ** 2 / g.spread.n);
    const z = se > 0 ? gap / se : gap > 0 ? Infinity : 0;
    return { name: g.name, gap, z, separated: z > 2 };
  });
  return { best: best.name, mean: best.spread.mean, others };
}

/** The ranking as one sentence of the report. */
export function rankingSentence(r: NonNullable<ReturnType<typeof rankByMean>>, seeded: boolean): string {
  const parts = r.others.map((o) => {
    const head = `${o.name} +${o.gap.toFixed(3)} bits`;
    if (o.z === null) return head;
    return o.separated
      ? `${head} (${o.z.toFixed(1)} standard errors: a real gap)`
      : `${head} (${o.z.toFixed(1)} standard errors: within the seed spread, not a ranking)`;
  });
  const what = seeded ? 'Lowest mean test NLL' : 'Lowest test NLL';
  const tail = seeded ? '' : ' One seed per model: differences of a few hundredths of a bit can be seed noise.';
  return (
    `**${what}: ${r.best}** at ${r.mean.toFixed(3)} bits per sample` +
    `${parts.length ? `; ${parts.join(', ')}` : ''}.${tail}`
  );
}
