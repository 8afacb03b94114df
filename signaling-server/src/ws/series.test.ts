import { describe, expect, it } from 'vitest';
import { PerMinute, SERIES_MINUTES } from './series';

describe('PerMinute', () => {
  it('counts per minute over the last hour, zeros included, and forgets older minutes', () => {
    let t = 10 * 60_000 * 60; // on a minute boundary
    const s = new PerMinute(() => t);
    s.add();
    s.add(2);
    t += 60_000;
    s.add();
    let p = s.points();
    expect(p).toHaveLength(SERIES_MINUTES);
    expect(p.at(-1)).toEqual({ at: t, count: 1 });
    expect(p.at(-2)).toEqual({ at: t - 60_000, count: 3 });
    expect(p.slice(0, -2).every((x) => x.count === 0)).toBe(true);
    t += 61 * 60_000;
    s.add();
    p = s.points();
    expect(p.reduce((a, x) => a + x.count, 0)).toBe(1);
  });
});
