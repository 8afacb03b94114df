/**
 * Claiming a node: a claim token (signed by the node, expiring) is spent
 * once. It stops working when the node is claimed (by it or by an agent's
 * access token), and a token issued before the node's owner removed the node
 * never claims it again: the agent must be run again and print a new one.
 */
import { PeerwayError } from '@peerway/protocol';
import {
  CLAIM_TOKEN_TTL_S,
  shortIdOf,
  verifyClaimToken,
  type ClaimPayload,
} from '@peerway/protocol/node';
import type { NodeRecord, Store } from '../store/store';

/** One-time kinds: spent claim nonces, and when a node was last removed. */
const SPENT = 'claim-spent';
const REMOVED = 'node-removed';
/** How long a removal is remembered: as long as a claim token issued before it can live. */
const REMOVED_MEMORY_MS = CLAIM_TOKEN_TTL_S * 1000 + 60_000;

/** What a claim token can still do, for the add-node page and the short link. */
export type ClaimState = 'open' | 'claimed' | 'used' | 'revoked';

/** Verifies a claim token and tells what it can still do (throws only for a bad or expired token). */
export async function claimState(
  store: Store,
  token: string,
  now: number,
): Promise<{ claim: ClaimPayload; state: ClaimState; node: NodeRecord | null }> {
  const claim = verifyClaimToken(token, now);
  const node = await store.getNode(claim.nodeId);
  if (node?.ownerId) return { claim, state: 'claimed', node };
  if (await store.peekOneTime(SPENT, claim.nonce, now)) return { claim, state: 'used', node };
  const removedAt = await store.peekOneTime(REMOVED, claim.nodeId, now);
  if (removedAt && claim.iat * 1000 <= Number(removedAt)) return { claim, state: 'revoked', node };
  return { claim, state: 'open', node };
}

const REFUSAL: Record<Exclude<ClaimState, 'open'>, (mine: boolean) => PeerwayError> = {
  claimed: (mine) =>
    mine
      ? new PeerwayError('conflict', 'this node is yours already: it is in your node list')
      : new PeerwayError(
          'conflict',
          'this node is already claimed by another account; its owner must remove it first',
        ),
  used: () =>
    new PeerwayError(
      'expired',
      'this claim link was used already; run `peerway-agent claim-url` on the node for a new one',
    ),
  revoked: () =>
    new PeerwayError(
      'expired',
      'this claim link is from before the node was removed; start the agent again for a new one',
    ),
};

/**
 * Claims the node a claim token names for `userId`, spending the token.
 * Throws `conflict` (claimed already), `expired` (used, expired, or from
 * before the node was removed) or the token's own errors.
 */
export async function redeemClaim(
  store: Store,
  token: string,
  userId: string,
  now: number,
): Promise<NodeRecord> {
  const { claim, state, node } = await claimState(store, token, now);
  if (state !== 'open') throw REFUSAL[state](node?.ownerId === userId);
  // Spent before the claim: of two requests with one token, one gets through.
  if (!(await store.putOneTimeIfAbsent(SPENT, claim.nonce, claim.nodeId, claim.exp * 1000, now)))
    throw REFUSAL.used(false);
  const r = await store.claimNode(claim.nodeId, userId, {
    shortId: shortIdOf(claim.nodeId),
    name: claim.name,
    now,
  });
  if (!r.ok || r.alreadyYours) throw REFUSAL.claimed(r.ok);
  return r.node;
}

/** Marks the node as removed now: claim tokens it issued before stop working. */
export async function rememberRemoval(store: Store, nodeId: string, now: number): Promise<void> {
  await store.putOneTime(REMOVED, nodeId, String(now), now + REMOVED_MEMORY_MS);
}
