import { describe, expect, it } from 'vitest';
import type { User } from '../store/store';
import { TokenCache } from './token-cache';

const alice = { id: 'u1', email: 'a@example.com', isAdmin: false } as unknown as User;
const bob = { id: 'u2', email: 'b@example.com', isAdmin: false } as unknown as User;

describe('TokenCache', () => {
  it('answers for ttl only, and never past the token’s own expiry', () => {
    let now = 1000;
    const c = new TokenCache(() => now, 1000);
    c.put('h1', 't1', alice, null);
    c.put('h2', 't2', bob, 1500);
    expect(c.get('h1')).toBe(alice);
    expect(c.get('h2')).toBe(bob);
    now = 1500;
    expect(c.get('h2')).toBeUndefined(); // expired, although cached for longer
    expect(c.get('h1')).toBe(alice);
    now = 2000;
    expect(c.get('h1')).toBeUndefined();
    expect(c.get('nope')).toBeUndefined();
  });

  it('forgets a revoked token and every token of a user at once', () => {
    const c = new TokenCache(() => 0, 1000);
    c.put('h1', 't1', alice, null);
    c.put('h2', 't2', alice, null);
    c.put('h3', 't3', bob, null);
    c.forget({ tokenId: 't1' });
    expect(c.get('h1')).toBeUndefined();
    expect(c.get('h2')).toBe(alice);
    c.forget({ userId: 'u1' });
    expect(c.get('h2')).toBeUndefined();
    expect(c.get('h3')).toBe(bob);
  });

  it('keeps nothing with a ttl of 0', () => {
    const c = new TokenCache(() => 0, 0);
    c.put('h1', 't1', alice, null);
    expect(c.get('h1')).toBeUndefined();
  });

  it('lets the last use be written once per interval per token', () => {
    let now = 0;
    const c = new TokenCache(() => now, 1000, 60_000);
    expect(c.touchDue('t1')).toBe(true);
    expect(c.touchDue('t1')).toBe(false);
    expect(c.touchDue('t2')).toBe(true);
    now = 59_999;
    expect(c.touchDue('t1')).toBe(false);
    now = 60_000;
    expect(c.touchDue('t1')).toBe(true);
  });
});
