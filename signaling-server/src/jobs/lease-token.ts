/**
 * Lease tokens: a random secret per attempt, sent to the worker in its
 * `job-lease`; the store keeps only its SHA-256, and the agent's HTTP
 * calls (input, output, files) present it as a bearer token.
 */
import { createHash, randomBytes } from 'node:crypto';

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
