/**
 * Bounded storage from anonymous peers: anyone can make a key pair and
 * connect, and each new key adds a node row. Rows of nodes nobody claimed
 * go once they have been unseen for UNCLAIMED_NODE_TTL_MS (a claim token
 * lives a day, so no link that could still work is lost), and so do expired
 * one-time values (claim links, spent claims, revoked sessions).
 */
import type { Logger } from 'pino';
import type { Store } from '../store/store';
import type { Clock } from '../ws/clock';

/** How long an unclaimed node may stay unseen before its row goes. */
export const UNCLAIMED_NODE_TTL_MS = 2 * 24 * 3600 * 1000;
/** How often the purge runs. */
export const PURGE_INTERVAL_MS = 3600 * 1000;
/** Rows removed per batch, so one run never holds the store for long. */
const PURGE_BATCH = 500;
/** Batches per run at most: a run is bounded even under a flood (the next run goes on). */
const PURGE_MAX_BATCHES = 200;

export interface PurgeOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  unclaimedTtlMs?: number;
  intervalMs?: number;
}

/** One purge run; returns what it removed. */
export async function purgeOnce(
  o: Pick<PurgeOptions, 'store' | 'clock' | 'unclaimedTtlMs'>,
): Promise<{ nodes: number; oneTime: number }> {
  const now = o.clock.now();
  const cutoff = now - (o.unclaimedTtlMs ?? UNCLAIMED_NODE_TTL_MS);
  let nodes = 0;
  for (let i = 0; i < PURGE_MAX_BATCHES; i++) {
    const gone = await o.store.purgeUnclaimedNodes(cutoff, PURGE_BATCH);
    nodes += gone.length;
    if (gone.length < PURGE_BATCH) break;
  }
  const oneTime = await o.store.purgeExpiredOneTime(now);
  return { nodes, oneTime };
}

/** Runs the purge now and every `intervalMs`; returns a stop function. */
export function startPurge(o: PurgeOptions): () => void {
  let running = false;
  const run = () => {
    if (running) return;
    running = true;
    purgeOnce(o)
      .then((r) => {
        if (r.nodes || r.oneTime) o.log.info(r, 'purged unclaimed nodes and expired values');
      })
      .catch((err: unknown) => o.log.warn({ err }, 'purge failed'))
      .finally(() => (running = false));
  };
  const timer = o.clock.setInterval(run, o.intervalMs ?? PURGE_INTERVAL_MS);
  (timer as { unref?: () => void }).unref?.();
  run();
  return () => o.clock.clearInterval(timer);
}
