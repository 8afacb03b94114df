/**
 * Sign-in cannot be brute-forced (issue 17, item 5), over real HTTP: failed
 * sign-ins are held back per account and per IP with a growing wait (429,
 * Retry-After) before any password is hashed, and a burst of sign-ins
 * cannot queue unbounded scrypt work.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ManualClock,
  api,
  randomEmail,
  randomPassword,
  withServer,
  makePasswordUser,
} from './helpers';
import type { PeerwayServer } from '../src/server';

const clock = new ManualClock();
let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer({}, { clock, signinLimits: { baseBackoffMs: 2000 } });
  server = ctx.server;
});
afterAll(() => ctx.stop());

/** A sign-in as if from `ip` (the server trusts X-Forwarded-For from loopback proxies only). */
const login = (email: string, password: string, ip = '192.0.2.10') =>
  api(server, 'POST', '/api/auth/login', {
    body: { email, password },
    headers: { 'x-forwarded-for': ip },
  });

describe('failed sign-ins', () => {
  it('30 wrong passwords: from the 6th on they are refused 429 without hashing; the right one waits out the backoff, then works', async () => {
    const { email, password } = await makePasswordUser(server);
    const hashing = vi.spyOn(server.auth.hashing, 'run');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const r = await login(email, `wrong-${i}-password`);
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        expect(r.json.error.code).toBe('rate_limited');
      }
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual(Array(25).fill(429));
    expect(hashing).toHaveBeenCalledTimes(5); // the refused 25 cost no scrypt
    expect(retryAfter).toBe('2');
    // The right password too, while the account is held back, from any address.
    const early = await login(email, password, '198.51.100.20');
    expect(early.status).toBe(429);
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    clock.advance(2000);
    const ok = await login(email, password);
    expect(ok.status).toBe(200);
    // The success cleared the account: a typo now is a plain 401, not a wait.
    expect((await login(email, 'typo-password')).status).toBe(401);
    hashing.mockRestore();
  });

  it('each further failure doubles the wait', async () => {
    const { email } = await makePasswordUser(server);
    for (let i = 0; i < 5; i++) await login(email, 'wrong-password', '198.51.100.30');
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const held = await login(email, 'wrong-password', '198.51.100.30');
      expect(held.status).toBe(429);
      const s = Number(held.headers.get('retry-after'));
      waits.push(s);
      clock.advance(s * 1000);
      expect((await login(email, 'wrong-password', '198.51.100.30')).status).toBe(401);
    }
    expect(waits).toEqual([2, 4, 8]);
  });

  it('one address trying many accounts is held back for every account, others are not', async () => {
    const attacker = '203.0.113.66';
    for (let i = 0; i < 20; i++) await login(randomEmail(), 'guess-password', attacker);
    const { email, password } = await makePasswordUser(server);
    expect((await login(email, password, attacker)).status).toBe(429);
    expect((await login(email, password, '203.0.113.67')).status).toBe(200);
  });

  it('sign-ups without an invite on a closed server count against the address too', async () => {
    const ip = '203.0.113.80';
    for (let i = 0; i < 20; i++) {
      const r = await api(server, 'POST', '/api/auth/signup', {
        body: { email: randomEmail(), password: randomPassword() },
        headers: { 'x-forwarded-for': ip },
      });
      expect(r.status).toBe(403);
    }
    const r = await api(server, 'POST', '/api/auth/signup', {
      body: { email: randomEmail(), password: randomPassword(), invite: 'guessed-invite' },
      headers: { 'x-forwarded-for': ip },
    });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('2');
  });
});

describe('concurrent password hashing', () => {
  it('a burst of sign-ins beyond the hashing queue is refused at once (429) while the rest are answered', async () => {
    const burst = await withServer({}, { hashLimits: { concurrentHashes: 1, maxQueuedHashes: 2 } });
    try {
      const s = burst.server;
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          api(s, 'POST', '/api/auth/login', {
            body: { email: randomEmail(), password: 'wrong-password' },
            headers: { 'x-forwarded-for': `192.0.2.${100 + i}` },
          }),
        ),
      );
      const busy = results.filter((r) => r.status === 429);
      expect(busy.length).toBeGreaterThan(0);
      for (const r of busy) {
        expect(r.headers.get('retry-after')).toBe('1');
        expect(r.json.error.message).toMatch(/busy/);
      }
      for (const r of results) expect([401, 429]).toContain(r.status);
      expect(s.auth.hashing.load).toEqual({ running: 0, waiting: 0 });
    } finally {
      await burst.stop();
    }
  });
});
