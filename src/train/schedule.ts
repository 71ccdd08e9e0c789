/**
 * Learning-rate schedule of the paper: linear warm-up from minLr to peakLr,
 * then a half-cosine back down to minLr at totalSteps, and minLr from then on (a run extended past
 * its planned length keeps training at the floor rather than climbing back up the cosine).
 * A pure function of the step, so a resumed run needs only the step and the config to continue.
 */
import { UserError } from '../util/errors.js';

export interface ScheduleConfig {
  /** steps of linear warm-up; 0 starts at peakLr */
  warmupSteps: number;
  /** step at which the cosine reaches minLr; warmupSteps <= totalSteps */
  totalSteps: number;
  minLr: number;
  peakLr: number;
}

/** The paper's rates: 1e-6 -> 3e-4 -> 1e-6. */
export const PAPER_LR = { minLr: 1e-6, peakLr: 3e-4 } as const;

export class ScheduleError extends UserError {}

/** Throws a ScheduleError naming the offending field; call once at start-up, before any step. */
export function validateSchedule(s: ScheduleConfig): void {
  const show = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v));
  const int = (field: keyof ScheduleConfig, min: number) => {
    const v = s?.[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new ScheduleError(`schedule.${field} must be an integer >= ${min}, got ${show(v)}`);
    }
  };
  const rate = (field: keyof ScheduleConfig) => {
    const v = s?.[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ScheduleError(`schedule.${field} must be a positive finite number, got ${show(v)}`);
    }
  };
  int('warmupSteps', 0);
  int('totalSteps', 1);
  if (s.warmupSteps > s.totalSteps) {
    throw new ScheduleError(`schedule.warmupSteps (${s.warmupSteps}) must be <= schedule.totalSteps (${s.totalSteps})`);
  }
  rate('minLr');
  rate('peakLr');
  if (s.minLr > s.peakLr)
    throw new ScheduleError(`schedule.minLr (${s.minLr}) must be <= schedule.peakLr (${s.peakLr})`);
}

/**
 * The rate for the update made at `step` (0-based: the first update uses step 0, i.e. minLr when
 * there is warm-up). At step == warmupSteps the rate is peakLr; at step >= totalSteps, minLr.
 */
export function learningRate(step: number, s: ScheduleConfig): number {
  validateSchedule(s);
  if (!Number.isSafeInteger(step) || step < 0)
    throw new ScheduleError(`step must be a non-negative integer, got ${step}`);
  const { warmupSteps: w, totalSteps: t, minLr, peakLr } = s;
  if (step >= t) return minLr;
  if (step < w) return minLr + ((peakLr - minLr) * step) / w;
  // w < t here: step in [w, t) excludes w === t.
  const progress = (step - w) / (t - w);
  return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
}
