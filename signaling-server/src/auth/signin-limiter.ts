/**
 * Brute-force brakes on sign-in: failed attempts are counted per client IP
 * and per account; past a threshold in a window, every further try from
 * that IP or for that account is refused (429 with Retry-After) before any
 * password is hashed, for a wait that doubles with each further failure up
 * to a cap. A success clears the account's count.
 *
 * Kept in memory, per server instance: with several instances behind a
 * balancer an attacker gets each instance's allowance (a small constant
 * factor), which still turns a brute force into a crawl. Memory is bounded
 * (old entries are dropped first).
 *
 * Time is injected (a clock), so the unit test runs on fake time.
 */
import { isIP } from 'node:net';
import { PeerwayError } from '@peerway/protocol';

export interface SigninLimits {
  /** Failures for one account within the window before it is held back. */
  accountMaxFailures: number;
  /** Failures from one IP (an IPv6 /64) within the window before it is held back. */
  ipMaxFailures: number;
  /** Failures older than this are forgotten (unless a wait is still running). */
  failureWindowMs: number;
  /** The first wait once past the threshold; each further failure doubles it. */
  baseBackoffMs: number;
  /** The longest wait. */
  maxBackoffMs: number;
  /** How many IPs and accounts are tracked at most (the oldest go first). */
  maxEntries: number;
}

export const DEFAULT_SIGNIN_LIMITS: SigninLimits = {
  accountMaxFailures: 5,
  // Higher than an account's: many people may share one address (NAT).
  ipMaxFailures: 20,
  // Longer than the longest wait: a failure after a capped wait still counts.
  failureWindowMs: 60 * 60_000,
  baseBackoffMs: 1000,
  maxBackoffMs: 15 * 60_000,
  maxEntries: 100_000,
};

/** A refusal that says when to come back (the HTTP layer sends it as Retry-After). */
export class RetryLaterError extends PeerwayError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('rate_limited', message);
  }
}

interface Entry {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
}

/** The key a client address counts under: IPv4 as is, IPv6 by its /64 (one host's usual share). */
export function ipKey(ip: string | undefined): string {
  if (!ip) return 'ip:unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return `ip:${v4[1]}`;
  if (isIP(ip) !== 6) return `ip:${ip}`;
  // Expand "::" so the first four groups are the /64.
  const [head = '', tail = ''] = ip.toLowerCase().split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `ip:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The key an account counts under (emails compare case-insensitively). */
export const accountKey = (email: string) => `acct:${email.trim().toLowerCase()}`;

export class SigninLimiter {
  // A Map keeps insertion order: re-inserting on each failure makes the
  // first key the one idle longest, which is the one dropped when full.
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly limits: SigninLimits,
    private readonly now: () => number,
  ) {}

  /**
   * Throws RetryLaterError when the IP or the account is being held back;
   * call before checking the password.
   */
  check(ip: string | undefined, email?: string): void {
    const now = this.now();
    let waitMs = 0;
    for (const k of this.keys(ip, email)) {
      const e = this.live(k, now);
      if (e && e.lockedUntil > now) waitMs = Math.max(waitMs, e.lockedUntil - now);
    }
    if (waitMs > 0)
      throw new RetryLaterError(
        `too many failed sign-ins: try again in ${Math.ceil(waitMs / 1000)} s`,
        waitMs,
      );
  }

  /** Records a failed attempt for the IP and the account. */
  failed(ip: string | undefined, email?: string): void {
    const now = this.now();
    for (const k of this.keys(ip, email)) {
      const max = k.startsWith('acct:')
        ? this.limits.accountMaxFailures
        : this.limits.ipMaxFailures;
      const e = this.live(k, now) ?? { failures: 0, lastFailureAt: now, lockedUntil: 0 };
      e.failures++;
      e.lastFailureAt = now;
      const over = e.failures - max;
      if (over >= 0)
        e.lockedUntil =
          now +
          Math.min(this.limits.maxBackoffMs, this.limits.baseBackoffMs * 2 ** Math.min(over, 40));
      this.entries.delete(k);
      this.entries.set(k, e);
    }
    while (this.entries.size > this.limits.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** A successful sign-in: the account starts afresh (its IP's count stays). */
  succeeded(email: string): void {
    this.entries.delete(accountKey(email));
  }

  /** How many IPs and accounts are tracked now. */
  get size(): number {
    return this.entries.size;
  }

  private keys(ip: string | undefined, email?: string): string[] {
    return email === undefined ? [ipKey(ip)] : [ipKey(ip), accountKey(email)];
  }

  /** The entry, unless its failures are forgotten by now. */
  private live(k: string, now: number): Entry | undefined {
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.lockedUntil <= now && now - e.lastFailureAt > this.limits.failureWindowMs) {
      this.entries.delete(k);
      return undefined;
    }
    return e;
  }
}
