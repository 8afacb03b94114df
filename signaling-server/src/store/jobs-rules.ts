/**
 * The decisions both job stores make alike, as pure functions: which
 * waiting groups a worker may take from (the protocol's matching rule over
 * each group's requirement key, parsed once and cached), and where an
 * attempt that did not succeed sends its job.
 */
import {
  parseRequirementKey,
  unmetRequirement,
  type JobState,
  type WorkerProfile,
} from '@peerway/protocol';
import type { AttemptEnd } from './jobs';

/** Parsed requirement keys; a key is a small string and groups are few, so the cache is bounded by count. */
const PARSED = new Map<string, ReturnType<typeof parseRequirementKey>>();
const MAX_PARSED_KEYS = 10_000;

function parsedKey(key: string): ReturnType<typeof parseRequirementKey> {
  let p = PARSED.get(key);
  if (!p) {
    p = parseRequirementKey(key);
    if (PARSED.size >= MAX_PARSED_KEYS) PARSED.clear();
    PARSED.set(key, p);
  }
  return p;
}

/** The keys among `keys` whose jobs this worker meets (each distinct key checked once). */
export function eligibleKeys(keys: readonly string[], profile: WorkerProfile): Set<string> {
  const ok = new Set<string>();
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) continue;
    seen.add(k);
    const p = parsedKey(k);
    if (unmetRequirement(p.type, p.requirements, profile, p.image) === null) ok.add(k);
  }
  return ok;
}

/**
 * Where a job goes when its attempt ends other than succeeded: cancelled
 * (asked for, or a cancel was requested meanwhile), back to the queue
 * (retryAt already come: a lost lease waits at its original place),
 * `failed` until retryAt, or `dead` once its attempts (`used` since the
 * last manual retry, lost ones included) are spent or the error is final.
 */
export function retryState(
  end: Exclude<AttemptEnd, { outcome: 'succeeded' }>,
  cancelRequested: boolean,
  used: number,
  maxAttempts: number,
  now: number,
): JobState {
  if (end.outcome === 'cancelled' || cancelRequested) return 'cancelled';
  if (!end.retryable || used >= maxAttempts) return 'dead';
  return end.retryAt <= now ? 'queued' : 'failed';
}
