/**
 * Reconnect policy: exponential backoff with full jitter, as a pure function
 * (livekit's DefaultReconnectPolicy shape). `rand` is injected for tests.
 * Agents retry forever, so it never returns null.
 */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 30_000;

/** Delay before reconnect attempt `attempt` (0 = first retry), in ms. */
export function nextDelay(attempt: number, rand: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20));
  // Full jitter, but never below a small floor so a flapping server is not hammered.
  return Math.max(100, Math.floor(rand() * ceiling));
}
