import { describe, expect, it } from 'vitest';
import { PeerwayError } from '@peerway/protocol';
import {
  DEFAULT_SIGNIN_LIMITS,
  RetryLaterError,
  SigninLimiter,
  ipKey,
  type SigninLimits,
} from './signin-limiter';
import { HashGate } from './password';

function limiter(over: Partial<SigninLimits> = {}) {
  let t = 1_000_000;
  const l = new SigninLimiter({ ...DEFAULT_SIGNIN_LIMITS, ...over }, () => t);
  return { l, advance: (ms: number) => (t += ms) };
}

/** The wait check() asks for now, or 0 when it lets the try through. */
function wait(l: SigninLimiter, ip: string, email?: string): number {
  try {
    l.check(ip, email);
    return 0;
  } catch (err) {
    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).code).toBe('rate_limited');
    return (err as RetryLaterError).retryAfterMs;
  }
}

describe('SigninLimiter (fake time)', () => {
  it('lets 5 failures for an account through, then holds it back with a doubling wait up to the cap', () => {
    const { l, advance } = limiter({ baseBackoffMs: 1000, maxBackoffMs: 8000 });
    for (let i = 0; i < 5; i++) {
      expect(wait(l, '192.0.2.1', 'a@x')).toBe(0);
      l.failed('192.0.2.1', 'a@x');
    }
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const w = wait(l, '192.0.2.1', 'a@x');
      waits.push(w);
      advance(w - 1);
      expect(wait(l, '192.0.2.1', 'a@x')).toBe(1); // still held back a millisecond before
      advance(1);
      expect(wait(l, '192.0.2.1', 'a@x')).toBe(0);
      l.failed('192.0.2.1', 'a@x');
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('holds the account back from every IP, and a success clears the account', () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 5; i++) l.failed(`198.51.100.${i}`, 'Victim@X');
    expect(wait(l, '203.0.113.9', 'victim@x')).toBe(1000);
    expect(wait(l, '203.0.113.9', 'other@x')).toBe(0);
    advance(1000);
    l.succeeded('victim@x');
    l.failed('203.0.113.9', 'victim@x');
    expect(wait(l, '203.0.113.9', 'victim@x')).toBe(0);
  });

  it('holds an IP back after its own threshold, whatever account it tries', () => {
    const { l } = limiter({ ipMaxFailures: 20 });
    for (let i = 0; i < 20; i++) l.failed('192.0.2.7', `u${i}@x`);
    expect(wait(l, '192.0.2.7', 'fresh@x')).toBe(1000);
    expect(wait(l, '192.0.2.8', 'fresh@x')).toBe(0);
    // an IPv6 attacker does not get a fresh allowance per address in its /64
    for (let i = 0; i < 20; i++) l.failed(`2001:db8:1:2::${i.toString(16)}`, `v${i}@x`);
    expect(wait(l, '2001:db8:1:2:ffff::1', 'fresh@x')).toBe(1000);
    expect(wait(l, '2001:db8:1:3::1', 'fresh@x')).toBe(0);
  });

  it('forgets failures after the window, and keeps memory bounded', () => {
    const { l, advance } = limiter({ failureWindowMs: 60_000, maxEntries: 100 });
    for (let i = 0; i < 4; i++) l.failed('192.0.2.1', 'a@x');
    advance(60_001);
    l.failed('192.0.2.1', 'a@x');
    expect(wait(l, '192.0.2.1', 'a@x')).toBe(0); // 1 failure in the window, not 5
    for (let i = 0; i < 1000; i++) l.failed(`10.0.${i >> 8}.${i & 255}`, `u${i}@x`);
    expect(l.size).toBeLessThanOrEqual(100);
  });

  it('keys IPv4-mapped addresses as IPv4 and IPv6 by /64', () => {
    expect(ipKey('::ffff:192.0.2.1')).toBe('ip:192.0.2.1');
    expect(ipKey('2001:db8:0:1::5')).toBe('ip:2001:db8:0:1::/64');
    expect(ipKey('2001:0db8:0000:0001:aaaa::')).toBe('ip:2001:db8:0:1::/64');
    expect(ipKey('::1')).toBe('ip:0:0:0:0::/64');
  });
});

describe('HashGate', () => {
  it('runs at most N at once, queues a bounded number, and refuses the rest at once', async () => {
    const gate = new HashGate({ concurrentHashes: 2, maxQueuedHashes: 3 });
    const release: (() => void)[] = [];
    let running = 0;
    let peak = 0;
    const job = () =>
      gate.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => release.push(r));
        running--;
        return 'ok';
      });
    const results = Array.from({ length: 10 }, () => job().catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 10));
    expect(gate.load).toEqual({ running: 2, waiting: 3 });
    // the 5 beyond the queue were refused without waiting for anyone
    const refused = await Promise.all(results.slice(5));
    for (const e of refused) expect(e).toMatchObject({ code: 'rate_limited' });
    expect(refused[0]).toBeInstanceOf(PeerwayError);
    while (release.length || gate.load.running) {
      release.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(await Promise.all(results.slice(0, 5))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(peak).toBe(2);
    expect(gate.load).toEqual({ running: 0, waiting: 0 });
  });
});
