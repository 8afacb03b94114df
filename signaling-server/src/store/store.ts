/**
 * The durable state of a Peerway server, behind one interface with two
 * implementations (SQLite, the embedded default; Redis, for several server
 * instances). Both run against one contract suite (`contract.ts`).
 *
 * Everything is async so Redis fits; every method that must be atomic says
 * so, and implementations make it so (a SQLite transaction, a Redis script).
 * Presence (online/offline) is not stored here: it comes from live
 * connections. Only `lastSeen` is kept.
 */

import { randomBytes } from 'node:crypto';
import type { JobStore } from './jobs';
import {
  PeerwayError,
  type DeploymentSpec,
  type NodeResources,
  type ReplicaResources,
  type ReplicaState,
} from '@peerway/protocol';

export type ServiceAccess = 'private' | 'public' | 'shared';

export interface User {
  id: string;
  email: string;
  /** scrypt hash, or null for users who only sign in through an external provider. */
  passwordHash: string | null;
  isAdmin: boolean;
  /** `iss|sub` of an external identity provider, when the user came from one. */
  externalSubject: string | null;
  createdAt: number;
}

export interface AccessTokenRecord {
  id: string;
  userId: string;
  name: string;
  /** SHA-256 of the secret, hex. The secret itself is never stored. */
  tokenHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  /** When the token stops working (ms since the epoch), or null for never. */
  expiresAt: number | null;
}

/** What a new access token is made of; the store stamps the rest. */
export type NewAccessToken = Omit<AccessTokenRecord, 'createdAt' | 'lastUsedAt' | 'expiresAt'> & {
  expiresAt?: number | null;
};

/** The record a store keeps for a new access token (made now, never used). */
export function newAccessTokenRecord(t: NewAccessToken, now: number): AccessTokenRecord {
  return { ...t, createdAt: now, lastUsedAt: null, expiresAt: t.expiresAt ?? null };
}

export interface NodeRecord {
  /** Ed25519 public key, base64url. */
  id: string;
  shortId: string;
  name: string;
  ownerId: string | null;
  isPublic: boolean;
  createdAt: number;
  lastSeen: number;
  /**
   * The agent's last resource report (capacity, offer, labels, whether it
   * takes deployments); null until it sent one. A stored report that no
   * longer passes `NodeResourcesSchema` reads as null (the agent sends a
   * new one when it connects).
   */
  resources: NodeResources | null;
}

/** A service name, reserved for the user who first claimed it. */
export interface ServiceRecord {
  name: string;
  ownerId: string;
  access: ServiceAccess;
  createdAt: number;
}

/** One node serving one service (several nodes may serve one name: replicas). */
export interface NodeServiceRecord {
  nodeId: string;
  name: string;
  description: string | null;
}

export type ClaimResult =
  | { ok: true; node: NodeRecord; alreadyYours: boolean }
  | { ok: false; reason: 'not_found' | 'claimed_by_other' };

export type ReserveResult = { ok: true; service: ServiceRecord } | { ok: false; ownerId: string };

/** A deployment: what to run (the spec) and who owns it. Its name is a service name too. */
export interface DeploymentRecord {
  name: string;
  ownerId: string;
  /** Normalised by `parseDeploymentSpec` when stored and checked again by it whenever read. */
  spec: DeploymentSpec;
  /**
   * 1 when created, +1 on every spec update and every applied plan
   * (`putAllocations`): a plan made from an older version is stale.
   */
  version: number;
  createdAt: number;
  /** When the spec last changed. */
  updatedAt: number;
}

/** What `putDeployment` is given; the store stamps the version. */
export interface NewDeployment {
  name: string;
  ownerId: string;
  /** A parsed spec; it is parsed again on the way in and its name must be `name`. */
  spec: DeploymentSpec;
  /** ms since the epoch: createdAt of a new deployment, updatedAt of every put. */
  now: number;
}

/** What the server wants of an allocation: its agent runs it, or stops and removes it. */
export type AllocationDesired = 'run' | 'stop';
export const ALLOCATION_DESIRED: readonly AllocationDesired[] = ['run', 'stop'];

/** One replica of a deployment, placed on one node. */
export interface AllocationRecord {
  /** 16 hex digits; the container's `peerway.allocation` label. */
  id: string;
  deployment: string;
  nodeId: string;
  /** The last state its agent reported; `pending` until the first report. */
  state: ReplicaState;
  /** Why it is in that state, in words, as the agent said it; null when it said nothing. */
  reason: string | null;
  /** What it holds on its node (the spec's resources when it was placed). */
  resources: ReplicaResources;
  desired: AllocationDesired;
  createdAt: number;
  /** When it entered its current state. */
  since: number;
  /** 1 when placed, +1 on every change (state, reason, desired). */
  version: number;
  /** How many times it went to `failed` or `exited` while desired `run`. */
  failures: number;
}

/**
 * A plan to apply in one step. Stops and removals take effect before the
 * placements, so a plan that moves a replica frees its old room first.
 */
export interface AllocationChanges {
  /** ms since the epoch: createdAt and since of the new allocations. */
  now: number;
  /** New allocations: state `pending`, desired `run`; the store picks their IDs. */
  place?: { nodeId: string; resources: ReplicaResources }[];
  /** IDs of this deployment's allocations to stop (desired becomes `stop`). */
  stop?: string[];
  /** IDs of this deployment's allocations to forget (gone from their node, or the node is gone). */
  remove?: string[];
}

export interface AppliedPlan {
  /** The deployment's version after this plan: the expectedVersion of the next. */
  version: number;
  /** The new allocations, in the order of `changes.place`. */
  placed: AllocationRecord[];
}

/** An agent's report on one allocation. */
export interface AllocationReport {
  id: string;
  /** The reporting node: a report about another node's allocation is ignored. */
  nodeId: string;
  state: ReplicaState;
  reason: string | null;
  now: number;
}

export interface DeploymentEvent {
  at: number;
  /** A short machine-readable word: placed, stopped, state, failed… */
  kind: string;
  message: string;
  /** The allocation it is about, if one. */
  allocation: string | null;
}

export type NewDeploymentEvent = Omit<DeploymentEvent, 'allocation'> & {
  allocation?: string | null;
};

/** How many events a deployment keeps (the newest). */
export const MAX_DEPLOYMENT_EVENTS = 200;

/** The name belongs to another user, as a deployment or as a service. */
export class NameTakenError extends PeerwayError {
  constructor(
    readonly takenName: string,
    /** The user who holds the name. */
    readonly ownerId: string,
    readonly heldAs: 'deployment' | 'service',
  ) {
    super(
      'conflict',
      `the name "${takenName}" belongs to another user's ${heldAs}; choose another name`,
    );
  }
}

/**
 * A plan could not be applied: the deployment changed since the plan was
 * made (another update or another server instance's plan), or a node it
 * places on no longer has the room. Read again, plan again, retry.
 */
export class PlanConflictError extends PeerwayError {
  constructor(
    readonly deployment: string,
    readonly why: 'stale_version' | 'node_full',
    detail: { expected: number; actual: number } | { node: string },
  ) {
    super(
      'conflict',
      'node' in detail
        ? `deployment "${deployment}": node ${detail.node} has no room left for the plan's replicas; plan again`
        : `deployment "${deployment}" is at version ${detail.actual}, the plan was made at ${detail.expected}; plan again`,
    );
  }
}

/** 16 hex digits for a new allocation. */
export function newAllocationId(): string {
  return randomBytes(8).toString('hex');
}

/** A new allocation of a plan's placement: pending, to run, with a fresh ID (both stores). */
export function newAllocation(
  deployment: string,
  p: { nodeId: string; resources: AllocationRecord['resources'] },
  now: number,
): AllocationRecord {
  return {
    id: newAllocationId(),
    deployment,
    nodeId: p.nodeId,
    state: 'pending',
    reason: null,
    resources: { ...p.resources },
    desired: 'run',
    createdAt: now,
    since: now,
    version: 1,
    failures: 0,
  };
}

/** The whole store: what is below, and the jobs part (./jobs.ts). */
export interface Store extends JobStore {
  /** Applies pending schema migrations (versioned, idempotent). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // users
  /** Throws PeerwayError('conflict') if the email (case-insensitive) exists. */
  createUser(u: Omit<User, 'id' | 'createdAt'>): Promise<User>;
  getUserById(id: string): Promise<User | null>;
  getUserByEmail(email: string): Promise<User | null>;
  getUserByExternalSubject(subject: string): Promise<User | null>;
  listUsers(): Promise<User[]>;
  countUsers(): Promise<number>;

  // personal access tokens
  createAccessToken(t: NewAccessToken): Promise<AccessTokenRecord>;
  /** The token with this hash, expired or not (the caller judges `expiresAt`). */
  findAccessTokenByHash(tokenHash: string): Promise<AccessTokenRecord | null>;
  touchAccessToken(id: string, now: number): Promise<void>;
  listAccessTokens(userId: string): Promise<AccessTokenRecord[]>;
  deleteAccessToken(userId: string, id: string): Promise<boolean>;

  // nodes
  /** Creates the node on first sight, else updates name and lastSeen. Returns the record. */
  upsertNode(n: { id: string; shortId: string; name: string; now: number }): Promise<NodeRecord>;
  getNode(id: string): Promise<NodeRecord | null>;
  getNodeByShortId(shortId: string): Promise<NodeRecord | null>;
  listNodesByOwner(ownerId: string): Promise<NodeRecord[]>;
  listPublicNodes(): Promise<NodeRecord[]>;
  listAllNodes(): Promise<NodeRecord[]>;
  /** Atomic: claims an unowned node (or confirms the caller's own). Creates it if `create` is given. */
  claimNode(
    id: string,
    ownerId: string,
    create?: { shortId: string; name: string; now: number },
  ): Promise<ClaimResult>;
  setNodeVisibility(id: string, isPublic: boolean): Promise<void>;
  setNodeLastSeen(id: string, now: number): Promise<void>;
  /** Removes the node and its service links (not the reserved names). */
  deleteNode(id: string): Promise<void>;
  /**
   * Atomic per node: removes up to `limit` nodes that nobody claimed and
   * that were last seen before `lastSeenBefore` (a node claimed meanwhile is
   * kept). Returns the IDs removed.
   */
  purgeUnclaimedNodes(lastSeenBefore: number, limit: number): Promise<string[]>;
  /** How many nodes nobody has claimed. */
  countUnclaimedNodes(): Promise<number>;

  // services
  /** Atomic: reserves `name` for `ownerId` unless another user holds it. */
  reserveService(
    name: string,
    ownerId: string,
    access: ServiceAccess,
    now: number,
  ): Promise<ReserveResult>;
  getService(name: string): Promise<ServiceRecord | null>;
  listServicesByOwner(ownerId: string): Promise<ServiceRecord[]>;
  setServiceAccess(name: string, access: ServiceAccess): Promise<void>;
  /** Replaces the set of services a node serves. */
  setNodeServices(
    nodeId: string,
    services: { name: string; description: string | null }[],
  ): Promise<void>;
  listNodeServices(nodeId: string): Promise<NodeServiceRecord[]>;
  /** Node IDs that serve `name` (replicas). */
  listServiceNodes(name: string): Promise<string[]>;

  // serving grants: users whose nodes may serve a service they do not own
  // (a separate right from viewing it: a share never lets anyone serve)
  addServeGrant(service: string, userId: string): Promise<void>;
  removeServeGrant(service: string, userId: string): Promise<void>;
  listServeGrants(service: string): Promise<string[]>;
  hasServeGrant(service: string, userId: string): Promise<boolean>;

  // shares (service access for named users: viewing only)
  addShare(service: string, userId: string): Promise<void>;
  removeShare(service: string, userId: string): Promise<void>;
  listShares(service: string): Promise<string[]>;
  hasShare(service: string, userId: string): Promise<boolean>;

  // settings (server keys and the like)
  getSetting(key: string): Promise<string | null>;
  /** Atomic: sets `key` only if absent; returns the value now stored. */
  setSettingIfAbsent(key: string, value: string): Promise<string>;

  // one-time values (admin sign-up links, short claim links)
  putOneTime(kind: string, key: string, value: string, expiresAt: number): Promise<void>;
  /**
   * Atomic: stores the value only if no unexpired value is held under that
   * key; true when this call stored it (a spent claim, for one).
   */
  putOneTimeIfAbsent(
    kind: string,
    key: string,
    value: string,
    expiresAt: number,
    now: number,
  ): Promise<boolean>;
  /** Drops expired one-time values; returns how many (Redis expires its own: 0). */
  purgeExpiredOneTime(now: number): Promise<number>;
  /** Reads without consuming; null if absent or expired. */
  peekOneTime(kind: string, key: string, now: number): Promise<string | null>;
  /** Atomic: returns and deletes; null if absent or expired (a second take gets null). */
  takeOneTime(kind: string, key: string, now: number): Promise<string | null>;

  // deployments (names share the namespace with services)
  /**
   * Atomic: creates the deployment, or updates its spec (version + 1).
   * Reserves its name as a service of the owner too (with the spec's access
   * when the service is new). Throws NameTakenError if another user holds the
   * name as a deployment or a service; PeerwayError('bad_request') if the spec
   * does not parse or names another deployment.
   */
  putDeployment(d: NewDeployment): Promise<DeploymentRecord>;
  /** Throws PeerwayError('internal') naming the field if its stored spec no longer validates. */
  getDeployment(name: string): Promise<DeploymentRecord | null>;
  /** By name; only the owner's when `ownerId` is given. Throws as getDeployment does. */
  listDeployments(ownerId?: string): Promise<DeploymentRecord[]>;
  /** Atomic: removes the deployment with its allocations and events (the service name stays reserved). */
  deleteDeployment(name: string): Promise<boolean>;

  // allocations (replicas)
  /**
   * Atomic: applies a plan if the deployment is still at `expectedVersion`
   * and every node it places on has room (by its last report, when it sent
   * one), then bumps the version. Throws PlanConflictError otherwise (the
   * caller reads, plans and retries), PeerwayError('not_found') if the
   * deployment is gone, ('bad_request') for an ID not of this deployment.
   */
  putAllocations(
    deployment: string,
    expectedVersion: number,
    changes: AllocationChanges,
  ): Promise<AppliedPlan>;
  getAllocation(id: string): Promise<AllocationRecord | null>;
  /**
   * Atomic: records an agent's report. Ignored (null) when the allocation
   * no longer exists or is on another node; otherwise the record as it is now.
   */
  updateAllocationState(report: AllocationReport): Promise<AllocationRecord | null>;
  /** Oldest first (createdAt, then ID); all of them without a filter. */
  listAllocations(filter?: { deployment?: string; nodeId?: string }): Promise<AllocationRecord[]>;
  /** What the allocations desired `run` on the node hold in all (the scheduler's "allocated"). */
  allocatedOn(nodeId: string): Promise<ReplicaResources>;

  // deployment events, the newest MAX_DEPLOYMENT_EVENTS kept
  /** False (nothing kept) when the deployment does not exist. */
  addDeploymentEvent(name: string, e: NewDeploymentEvent): Promise<boolean>;
  /** The last `limit` events, oldest first. */
  listDeploymentEvents(name: string, limit: number): Promise<DeploymentEvent[]>;

  // deploy grants: a node's owner lets another user deploy to the node
  // (apart from serve grants and shares)
  /** Throws PeerwayError('not_found') when the node or the user does not exist. */
  addDeployGrant(nodeId: string, userId: string): Promise<void>;
  removeDeployGrant(nodeId: string, userId: string): Promise<void>;
  /** User IDs, sorted. */
  listDeployGrants(nodeId: string): Promise<string[]>;
  /** IDs of the nodes granted to the user for deploying, sorted (the scheduler's `grants`). */
  deployableNodes(userId: string): Promise<string[]>;

  // node resources
  /**
   * Keeps the agent's report with the node (read back as `NodeRecord.resources`).
   * False when the node is unknown; PeerwayError('bad_request') for a report
   * that does not pass `NodeResourcesSchema`.
   */
  putNodeResources(nodeId: string, report: NodeResources): Promise<boolean>;
}
