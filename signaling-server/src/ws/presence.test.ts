import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Presence } from './presence';
import { systemClock } from './clock';

describe('Presence', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_800_000_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('keeps a heart-beating node online and drops a silent one after the timeout', () => {
    const persisted: [string, number][] = [];
    const p = new Presence(30_000, systemClock, (id, at) => persisted.push([id, at]), 10_000);
    p.start();
    const timedOut = vi.fn();
    const silent = vi.fn();
    p.connected('a', timedOut);
    p.connected('b', silent);
    for (let i = 0; i < 6; i++) {
      vi.advanceTimersByTime(10_000);
      p.heartbeat('a');
    }
    expect(p.isOnline('a')).toBe(true);
    expect(p.isOnline('b')).toBe(false);
    expect(silent).toHaveBeenCalledTimes(1);
    expect(timedOut).not.toHaveBeenCalled();
    expect(p.lastSeen('b')).toBe(1_800_000_000_000);
    expect(persisted.filter(([id]) => id === 'a').length).toBeGreaterThanOrEqual(3);
    // offline within one sweep (timeout / 4) after the timeout
    vi.advanceTimersByTime(30_000 + 7_500);
    expect(timedOut).toHaveBeenCalledTimes(1);
    expect(p.onlineCount).toBe(0);
    p.stop();
  });

  it('a replaced connection does not take the new one offline', () => {
    const p = new Presence(30_000, systemClock, () => {});
    const first = vi.fn();
    const second = vi.fn();
    p.connected('a', first);
    p.connected('a', second);
    p.disconnected('a', first);
    expect(p.isOnline('a')).toBe(true);
    p.disconnected('a', second);
    expect(p.isOnline('a')).toBe(false);
  });
});
