/**
 * Counts per minute over the last hour, for the admin charts (Prometheus
 * has the same figures as counters; this is what the dashboard draws
 * without one). Memory: at most 61 numbers per series.
 */
export const SERIES_MINUTES = 60;

export class PerMinute {
  private readonly counts = new Map<number, number>();

  constructor(private readonly now: () => number) {}

  add(n = 1): void {
    const minute = Math.floor(this.now() / 60_000);
    this.counts.set(minute, (this.counts.get(minute) ?? 0) + n);
    for (const k of this.counts.keys()) if (k < minute - SERIES_MINUTES) this.counts.delete(k);
  }

  /** One point per minute of the last hour (oldest first, zeros included): `at` is the minute's start in ms. */
  points(): { at: number; count: number }[] {
    const minute = Math.floor(this.now() / 60_000);
    const out: { at: number; count: number }[] = [];
    for (let m = minute - SERIES_MINUTES + 1; m <= minute; m++)
      out.push({ at: m * 60_000, count: this.counts.get(m) ?? 0 });
    return out;
  }
}
