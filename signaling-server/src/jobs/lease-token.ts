/**
 * Lease tokens: a random secret per attempt, sent to the worker in its
 * `job-lease`; the store keeps only its SHA-256, and the agent's HTTP
 * calls (input, output, files) present it as a bearer token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PeerwayError } from '@peerway/protocol';
import type { JobRecord, JobStore } from '../store/jobs';

/** Marks a lease token (never a user's access token or session). */
export const LEASE_TOKEN_PREFIX = 'pwl_';

export function newLeaseToken(): { token: string; hash: string } {
  const token = LEASE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: leaseTokenHash(token) };
}

/** SHA-256 hex of a token, as the store keeps it. */
export function leaseTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The job whose current attempt `token` is for, while it is leased or
 * running; a 401 otherwise (another job's token, an ended attempt's).
 */
export async function leasedJob(
  store: Pick<JobStore, 'getJob'>,
  id: string,
  token: string | undefined,
): Promise<JobRecord> {
  const job = token ? await store.getJob(id) : null;
  const ok =
    job !== null &&
    (job.state === 'leased' || job.state === 'running') &&
    job.leaseTokenHash !== undefined &&
    timingSafeEqual(Buffer.from(job.leaseTokenHash), Buffer.from(leaseTokenHash(token!)));
  if (!ok)
    throw new PeerwayError(
      'unauthorized',
      `this lease token is not valid for job ${id} now: a lease token works only for the attempt it was sent with, while it runs`,
    );
  return job;
}
