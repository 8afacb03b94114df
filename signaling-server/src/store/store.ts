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

export interface Store {
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
}
