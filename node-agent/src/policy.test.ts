import { describe, expect, it } from 'vitest';
import { nextDelay, RECONNECT_CAP_MS } from './policy';

describe('nextDelay', () => {
  it('grows exponentially and is capped', () => {
    expect(nextDelay(0, () => 0.999)).toBeLessThanOrEqual(500);
    expect(nextDelay(3, () => 0.999)).toBeGreaterThan(3000);
    expect(nextDelay(3, () => 0.999)).toBeLessThanOrEqual(4000);
    expect(nextDelay(50, () => 0.999)).toBeLessThanOrEqual(RECONNECT_CAP_MS);
    expect(nextDelay(50, () => 0.999)).toBeGreaterThan(RECONNECT_CAP_MS - 100);
  });
  it('is fully jittered with a floor', () => {
    expect(nextDelay(10, () => 0)).toBe(100);
    const spread = new Set(Array.from({ length: 50 }, (_, i) => nextDelay(8, () => i / 50)));
    expect(spread.size).toBeGreaterThan(40);
  });
});
