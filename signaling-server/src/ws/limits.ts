/** Abuse limits: a token bucket per connection and a sliding count per IP. */
import type { Clock } from './clock';

/** Classic token bucket: `ratePerSec` refill, `burst` capacity. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Counts events per key in fixed one-minute windows (bounded: old windows are dropped). */
export class PerKeyRate {
  private window = 0;
  private counts = new Map<string, number>();
  constructor(
    private readonly perMinute: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}
  /** Records one event; false when the key is over its limit. */
  hit(key: string): boolean {
    const w = Math.floor(this.clock.now() / 60_000);
    if (w !== this.window) {
      this.window = w;
      this.counts.clear();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n <= this.perMinute;
  }
}

/** Counts bad messages in a sliding window; says when a peer should be cut off. */
export class AbuseMeter {
  private times: number[] = [];
  constructor(
    private readonly maxBad: number,
    private readonly windowMs: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}
  /** Records one bad message; true when the peer crossed the line. */
  bad(): boolean {
    const now = this.clock.now();
    this.times.push(now);
    while (this.times.length > 0 && this.times[0]! < now - this.windowMs) this.times.shift();
    return this.times.length > this.maxBad;
  }
}
