import assert from 'node:assert/strict';
import { test } from 'node:test';
import { learningRate, PAPER_LR, ScheduleError, validateSchedule, type ScheduleConfig } from '../src/train/schedule.js';

const close = (a: number, b: number, rel = 1e-12) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)), `${a} != ${b}`);

test('schedule: hand-computed values on a small schedule (1 -> 3 -> 1, warm-up 4, total 8)', () => {
  const s: ScheduleConfig = { warmupSteps: 4, totalSteps: 8, minLr: 1, peakLr: 3 };
  // Warm-up: 1 + 2 * step / 4.
  assert.equal(learningRate(0, s), 1);
  assert.equal(learningRate(1, s), 1.5);
  assert.equal(learningRate(2, s), 2);
  assert.equal(learningRate(3, s), 2.5);
  assert.equal(learningRate(4, s), 3);
  // Cosine over steps 4..8: 1 + (1 + cos(pi * (step - 4) / 4)).
  close(learningRate(5, s), 2 + Math.SQRT1_2);
  close(learningRate(6, s), 2);
  close(learningRate(7, s), 2 - Math.SQRT1_2);
  assert.equal(learningRate(8, s), 1);
  assert.equal(learningRate(9, s), 1);
  assert.equal(learningRate(1_000_000, s), 1);
});

test('schedule: paper rates (1e-6 -> 3e-4 -> 1e-6), values computed by hand', () => {
  const s: ScheduleConfig = { warmupSteps: 10, totalSteps: 110, ...PAPER_LR };
  assert.equal(learningRate(0, s), 1e-6);
  close(learningRate(5, s), 1.505e-4);
  close(learningRate(10, s), 3e-4);
  close(learningRate(35, s), 2.562124638e-4, 1e-9); // cos(pi/4)
  close(learningRate(60, s), 1.505e-4); // cos(pi/2) = 0: halfway between the rates
  close(learningRate(85, s), 4.478753621e-5, 1e-9); // cos(3pi/4)
  assert.equal(learningRate(110, s), 1e-6);
  assert.equal(learningRate(500, s), 1e-6);
});

test('schedule: rises through warm-up, never rises after, stays within [minLr, peakLr]', () => {
  const s: ScheduleConfig = { warmupSteps: 37, totalSteps: 500, minLr: 1e-6, peakLr: 3e-4 };
  let prev = -Infinity;
  for (let i = 0; i <= 37; i++) {
    const lr = learningRate(i, s);
    assert.ok(lr > prev, `warm-up not increasing at ${i}`);
    prev = lr;
  }
  for (let i = 38; i <= 600; i++) {
    const lr = learningRate(i, s);
    assert.ok(lr <= prev, `decay increased at ${i}: ${prev} -> ${lr}`);
    assert.ok(lr >= s.minLr && lr <= s.peakLr);
    prev = lr;
  }
  // The cosine starts flat at its peak and ends flat at its floor.
  assert.ok(s.peakLr - learningRate(38, s) < 1e-4 * s.peakLr);
  assert.ok(learningRate(499, s) - s.minLr < 1e-4 * s.peakLr);
});

test('schedule: no warm-up starts at the peak; warm-up == total ends at the floor', () => {
  assert.equal(learningRate(0, { warmupSteps: 0, totalSteps: 10, minLr: 1, peakLr: 2 }), 2);
  close(learningRate(5, { warmupSteps: 0, totalSteps: 10, minLr: 1, peakLr: 2 }), 1.5);
  const flat = { warmupSteps: 10, totalSteps: 10, minLr: 1, peakLr: 2 };
  close(learningRate(9, flat), 1.9);
  assert.equal(learningRate(10, flat), 1);
  // min == peak is a constant rate.
  for (const i of [0, 3, 7, 20])
    assert.equal(learningRate(i, { warmupSteps: 5, totalSteps: 10, minLr: 0.5, peakLr: 0.5 }), 0.5);
});

test('schedule: invalid configs are refused naming the field', () => {
  const ok: ScheduleConfig = { warmupSteps: 10, totalSteps: 100, minLr: 1e-6, peakLr: 3e-4 };
  assert.doesNotThrow(() => validateSchedule(ok));
  const bad: [Partial<ScheduleConfig>, RegExp][] = [
    [{ warmupSteps: 200 }, /warmupSteps \(200\) must be <= schedule\.totalSteps \(100\)/],
    [{ warmupSteps: -1 }, /schedule\.warmupSteps must be an integer >= 0/],
    [{ warmupSteps: 1.5 }, /schedule\.warmupSteps/],
    [{ totalSteps: 0, warmupSteps: 0 }, /schedule\.totalSteps must be an integer >= 1/],
    [{ minLr: 0 }, /schedule\.minLr must be a positive/],
    [{ peakLr: -3e-4 }, /schedule\.peakLr must be a positive/],
    [{ peakLr: NaN }, /schedule\.peakLr/],
    [{ minLr: 1e-3 }, /schedule\.minLr \(0\.001\) must be <= schedule\.peakLr \(0\.0003\)/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(
      () => learningRate(0, { ...ok, ...patch }),
      (e: unknown) => e instanceof ScheduleError && re.test(e.message),
      JSON.stringify(patch),
    );
  }
  assert.throws(() => learningRate(-1, ok), /step must be a non-negative integer/);
  assert.throws(() => learningRate(2.5, ok), /step must be a non-negative integer/);
});
