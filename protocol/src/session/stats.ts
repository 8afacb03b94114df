import { STATS_REPORT_DELAYS_MS } from '../tunnel/wire';

/**
 * Reports how the connection was made once now and again after each delay
 * (ICE may move to a better pair in the first seconds). Returns a cancel.
 */
export function scheduleStats(
  report: () => void,
  delays: readonly number[] = STATS_REPORT_DELAYS_MS,
): () => void {
  report();
  const timers = delays.map((ms) => setTimeout(report, ms));
  return () => timers.forEach((t) => clearTimeout(t));
}
