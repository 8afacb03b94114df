/**
 * The embedded default store: one SQLite file in the data directory (WAL).
 * better-sqlite3 is synchronous; each method is one statement or one
 * transaction, so the atomic methods are atomic. Transactions that read
 * then write are IMMEDIATE: they take the write lock first, so another
 * process on the same file (the `users`/`tokens` commands, an overlapping
 * restart) waits its turn (busy_timeout) instead of failing with
 * SQLITE_BUSY when a deferred read upgrades to a write.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  PeerwayError,
  deployableResources,
  type NodeResources,
  type ReplicaResources,
  type ReplicaState,
} from '@peerway/protocol';
import type {
  AccessTokenRecord,
  AllocationChanges,
  AllocationDesired,
  AllocationRecord,
  AllocationReport,
  AppliedPlan,
  ClaimResult,
  DeploymentEvent,
  DeploymentRecord,
  NewDeployment,
  NewDeploymentEvent,
  NodeRecord,
  NodeServiceRecord,
  ReserveResult,
  ServiceAccess,
  ServiceRecord,
  NewAccessToken,
  Store,
  User,
} from './store';
import {
  MAX_DEPLOYMENT_EVENTS,
  NameTakenError,
  PlanConflictError,
  newAccessTokenRecord,
  newAllocation,
} from './store';
import {
  applyReport,
  boundedText,
  checkReplicaState,
  resourcesFromStore,
  resourcesToStore,
  specFromStore,
  specToStore,
} from './checks';
import { JOBS_MIGRATION, SqliteJobStore } from './jobs-sqlite';

/** Versioned migrations; each runs once, in order, in a transaction. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT,
     is_admin INTEGER NOT NULL, external_subject TEXT UNIQUE, created_at INTEGER NOT NULL);
   CREATE TABLE access_tokens (
     id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, name TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, last_used_at INTEGER);
   CREATE TABLE nodes (
     id TEXT PRIMARY KEY, short_id TEXT NOT NULL, name TEXT NOT NULL, owner_id TEXT REFERENCES users(id),
     is_public INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL);
   CREATE INDEX nodes_short ON nodes(short_id);
   CREATE INDEX nodes_owner ON nodes(owner_id);
   CREATE TABLE services (
     name TEXT PRIMARY KEY, owner_id TEXT NOT NULL REFERENCES users(id), access TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE INDEX services_owner ON services(owner_id);
   CREATE TABLE node_services (
     node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE, name TEXT NOT NULL, description TEXT,
     PRIMARY KEY (node_id, name));
   CREATE INDEX node_services_name ON node_services(name);
   CREATE TABLE shares (service TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     PRIMARY KEY (service, user_id));
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE one_time (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (kind, key));`,
  // 2: token expiry; serving grants apart from shares; what the purges need
  `ALTER TABLE access_tokens ADD COLUMN expires_at INTEGER;
   CREATE TABLE serve_grants (service TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     PRIMARY KEY (service, user_id));
   CREATE INDEX one_time_expiry ON one_time(expires_at);
   CREATE INDEX nodes_unclaimed ON nodes(last_seen) WHERE owner_id IS NULL;`,
  // 3: deployments, their allocations (no foreign key to nodes: an allocation
  // on a node that is gone stays until a plan stops it) and events; deploy
  // grants; the node's resource report
  `CREATE TABLE deployments (
     name TEXT PRIMARY KEY, owner_id TEXT NOT NULL REFERENCES users(id), spec TEXT NOT NULL,
     version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE INDEX deployments_owner ON deployments(owner_id);
   CREATE TABLE allocations (
     id TEXT PRIMARY KEY, deployment TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
     node_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
     cpu_millis INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, gpu INTEGER NOT NULL,
     desired TEXT NOT NULL, created_at INTEGER NOT NULL, since INTEGER NOT NULL,
     version INTEGER NOT NULL, failures INTEGER NOT NULL);
   CREATE INDEX allocations_deployment ON allocations(deployment, created_at);
   CREATE INDEX allocations_node ON allocations(node_id, created_at);
   CREATE TABLE deployment_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     deployment TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
     at INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, allocation TEXT);
   CREATE INDEX deployment_events_by ON deployment_events(deployment, seq);
   CREATE TABLE deploy_grants (
     node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
     user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     PRIMARY KEY (node_id, user_id));
   CREATE INDEX deploy_grants_user ON deploy_grants(user_id);
   ALTER TABLE nodes ADD COLUMN resources TEXT;`,
  // 4: jobs, their attempts and files, job grants
  JOBS_MIGRATION,
  // 5: one user's jobs in one state (the dashboard's and the CLI's lists),
  // without reading through all of the user's history
  `CREATE INDEX jobs_submitter_state ON jobs(submitter_id, state, seq);`,
];

interface UserRow {
  id: string;
  email: string;
  password_hash: string | null;
  is_admin: number;
  external_subject: string | null;
  created_at: number;
}
interface NodeRow {
  id: string;
  short_id: string;
  name: string;
  owner_id: string | null;
  is_public: number;
  created_at: number;
  last_seen: number;
  resources: string | null;
}
interface TokenRow {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
}
interface DeploymentRow {
  name: string;
  owner_id: string;
  spec: string;
  version: number;
  created_at: number;
  updated_at: number;
}
interface AllocationRow {
  id: string;
  deployment: string;
  node_id: string;
  state: string;
  reason: string | null;
  cpu_millis: number;
  memory_bytes: number;
  gpu: number;
  desired: string;
  created_at: number;
  since: number;
  version: number;
  failures: number;
}
interface ServiceRow {
  name: string;
  owner_id: string;
  access: string;
  created_at: number;
}

const toUser = (r: UserRow): User => ({
  id: r.id,
  email: r.email,
  passwordHash: r.password_hash,
  isAdmin: r.is_admin === 1,
  externalSubject: r.external_subject,
  createdAt: r.created_at,
});
const toNode = (r: NodeRow): NodeRecord => ({
  id: r.id,
  shortId: r.short_id,
  name: r.name,
  ownerId: r.owner_id,
  isPublic: r.is_public === 1,
  createdAt: r.created_at,
  lastSeen: r.last_seen,
  resources: resourcesFromStore(r.resources),
});
const toDeployment = (r: DeploymentRow): DeploymentRecord => ({
  name: r.name,
  ownerId: r.owner_id,
  spec: specFromStore(r.name, r.spec),
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toAllocation = (r: AllocationRow): AllocationRecord => ({
  id: r.id,
  deployment: r.deployment,
  nodeId: r.node_id,
  state: r.state as ReplicaState,
  reason: r.reason,
  resources: { cpuMillis: r.cpu_millis, memoryBytes: r.memory_bytes, gpu: r.gpu },
  desired: r.desired as AllocationDesired,
  createdAt: r.created_at,
  since: r.since,
  version: r.version,
  failures: r.failures,
});
const ZERO: ReplicaResources = { cpuMillis: 0, memoryBytes: 0, gpu: 0 };
const toToken = (r: TokenRow): AccessTokenRecord => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  tokenHash: r.token_hash,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
});
const toService = (r: ServiceRow): ServiceRecord => ({
  name: r.name,
  ownerId: r.owner_id,
  access: r.access as ServiceAccess,
  createdAt: r.created_at,
});

function openDatabase(dataDir: string | ':memory:'): Database.Database {
  if (dataDir === ':memory:') return new Database(':memory:');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return new Database(join(dataDir, 'peerway.db'));
}

/** The jobs methods come from SqliteJobStore (./jobs-sqlite.ts). */
export class SqliteStore extends SqliteJobStore implements Store {
  /** Opens (creating) `<dataDir>/peerway.db`; `':memory:'` for a throwaway store. */
  constructor(dataDir: string | ':memory:') {
    super(openDatabase(dataDir));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  async migrate(): Promise<void> {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
      v: number | null;
    };
    const current = row.v ?? 0;
    MIGRATIONS.forEach((sql, i) => {
      const version = i + 1;
      if (version <= current) return;
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(version, Date.now());
      })();
    });
  }

  async close(): Promise<void> {
    this.db.close();
  }

  // users
  async createUser(u: Omit<User, 'id' | 'createdAt'>): Promise<User> {
    const user: User = { ...u, id: randomUUID(), createdAt: Date.now() };
    try {
      this.db
        .prepare('INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)')
        .run(
          user.id,
          user.email,
          user.passwordHash,
          user.isAdmin ? 1 : 0,
          user.externalSubject,
          user.createdAt,
        );
    } catch (cause) {
      if ((cause as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new PeerwayError('conflict', `a user with email ${u.email} already exists`, {
          cause,
        });
      }
      throw cause;
    }
    return user;
  }
  async getUserById(id: string) {
    const r = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return r ? toUser(r) : null;
  }
  async getUserByEmail(email: string) {
    const r = this.db.prepare('SELECT * FROM users WHERE email = ?').get(email) as
      UserRow | undefined;
    return r ? toUser(r) : null;
  }
  async getUserByExternalSubject(subject: string) {
    const r = this.db.prepare('SELECT * FROM users WHERE external_subject = ?').get(subject) as
      UserRow | undefined;
    return r ? toUser(r) : null;
  }
  async listUsers() {
    return (this.db.prepare('SELECT * FROM users ORDER BY created_at').all() as UserRow[]).map(
      toUser,
    );
  }
  async countUsers() {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  // tokens
  async createAccessToken(t: NewAccessToken) {
    const rec = newAccessTokenRecord(t, Date.now());
    this.db
      .prepare(
        'INSERT INTO access_tokens (id, user_id, name, token_hash, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?, NULL, ?)',
      )
      .run(rec.id, rec.userId, rec.name, rec.tokenHash, rec.createdAt, rec.expiresAt);
    return rec;
  }
  async findAccessTokenByHash(tokenHash: string) {
    const r = this.db.prepare('SELECT * FROM access_tokens WHERE token_hash = ?').get(tokenHash) as
      TokenRow | undefined;
    return r ? toToken(r) : null;
  }
  async touchAccessToken(id: string, now: number) {
    this.db.prepare('UPDATE access_tokens SET last_used_at = ? WHERE id = ?').run(now, id);
  }
  async listAccessTokens(userId: string) {
    return (
      this.db
        .prepare('SELECT * FROM access_tokens WHERE user_id = ? ORDER BY created_at')
        .all(userId) as TokenRow[]
    ).map(toToken);
  }
  async deleteAccessToken(userId: string, id: string) {
    return (
      this.db.prepare('DELETE FROM access_tokens WHERE user_id = ? AND id = ?').run(userId, id)
        .changes > 0
    );
  }

  // nodes
  async upsertNode(n: { id: string; shortId: string; name: string; now: number }) {
    this.db
      .prepare(
        `INSERT INTO nodes (id, short_id, name, owner_id, is_public, created_at, last_seen) VALUES (?, ?, ?, NULL, 0, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen`,
      )
      .run(n.id, n.shortId, n.name, n.now, n.now);
    return (await this.getNode(n.id))!;
  }
  async getNode(id: string) {
    const r = this.db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
    return r ? toNode(r) : null;
  }
  async getNodeByShortId(shortId: string) {
    const r = this.db.prepare('SELECT * FROM nodes WHERE short_id = ? LIMIT 1').get(shortId) as
      NodeRow | undefined;
    return r ? toNode(r) : null;
  }
  async listNodesByOwner(ownerId: string) {
    return (
      this.db
        .prepare('SELECT * FROM nodes WHERE owner_id = ? ORDER BY created_at')
        .all(ownerId) as NodeRow[]
    ).map(toNode);
  }
  async listPublicNodes() {
    return (
      this.db
        .prepare(
          'SELECT * FROM nodes WHERE is_public = 1 AND owner_id IS NOT NULL ORDER BY created_at',
        )
        .all() as NodeRow[]
    ).map(toNode);
  }
  async listAllNodes() {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY created_at').all() as NodeRow[]).map(
      toNode,
    );
  }
  async claimNode(
    id: string,
    ownerId: string,
    create?: { shortId: string; name: string; now: number },
  ): Promise<ClaimResult> {
    return this.db
      .transaction((): ClaimResult => {
        let r = this.db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
        if (!r && create) {
          this.db
            .prepare(
              'INSERT INTO nodes (id, short_id, name, owner_id, is_public, created_at, last_seen) VALUES (?, ?, ?, NULL, 0, ?, ?)',
            )
            .run(id, create.shortId, create.name, create.now, create.now);
          r = this.db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow;
        }
        if (!r) return { ok: false, reason: 'not_found' };
        if (r.owner_id === ownerId) return { ok: true, node: toNode(r), alreadyYours: true };
        if (r.owner_id !== null) return { ok: false, reason: 'claimed_by_other' };
        this.db.prepare('UPDATE nodes SET owner_id = ? WHERE id = ?').run(ownerId, id);
        return { ok: true, node: toNode({ ...r, owner_id: ownerId }), alreadyYours: false };
      })
      .immediate();
  }
  async setNodeVisibility(id: string, isPublic: boolean) {
    this.db.prepare('UPDATE nodes SET is_public = ? WHERE id = ?').run(isPublic ? 1 : 0, id);
  }
  async setNodeLastSeen(id: string, now: number) {
    this.db.prepare('UPDATE nodes SET last_seen = ? WHERE id = ?').run(now, id);
  }
  async deleteNode(id: string) {
    this.db.prepare('DELETE FROM nodes WHERE id = ?').run(id);
  }
  async purgeUnclaimedNodes(lastSeenBefore: number, limit: number) {
    // One statement: a node claimed in between no longer matches.
    return (
      this.db
        .prepare(
          `DELETE FROM nodes WHERE id IN (SELECT id FROM nodes WHERE owner_id IS NULL AND last_seen < ? LIMIT ?)
           AND owner_id IS NULL RETURNING id`,
        )
        .all(lastSeenBefore, limit) as { id: string }[]
    ).map((r) => r.id);
  }
  async countUnclaimedNodes() {
    return (
      this.db.prepare('SELECT COUNT(*) AS n FROM nodes WHERE owner_id IS NULL').get() as {
        n: number;
      }
    ).n;
  }

  // services
  async reserveService(
    name: string,
    ownerId: string,
    access: ServiceAccess,
    now: number,
  ): Promise<ReserveResult> {
    return this.db
      .transaction((): ReserveResult => {
        const r = this.db.prepare('SELECT * FROM services WHERE name = ?').get(name) as
          ServiceRow | undefined;
        if (r)
          return r.owner_id === ownerId
            ? { ok: true, service: toService(r) }
            : { ok: false, ownerId: r.owner_id };
        this.db.prepare('INSERT INTO services VALUES (?, ?, ?, ?)').run(name, ownerId, access, now);
        return { ok: true, service: { name, ownerId, access, createdAt: now } };
      })
      .immediate();
  }
  async getService(name: string) {
    const r = this.db.prepare('SELECT * FROM services WHERE name = ?').get(name) as
      ServiceRow | undefined;
    return r ? toService(r) : null;
  }
  async listServicesByOwner(ownerId: string) {
    return (
      this.db
        .prepare('SELECT * FROM services WHERE owner_id = ? ORDER BY name')
        .all(ownerId) as ServiceRow[]
    ).map(toService);
  }
  async setServiceAccess(name: string, access: ServiceAccess) {
    this.db.prepare('UPDATE services SET access = ? WHERE name = ?').run(access, name);
  }
  async setNodeServices(nodeId: string, services: { name: string; description: string | null }[]) {
    this.db
      .transaction(() => {
        this.db.prepare('DELETE FROM node_services WHERE node_id = ?').run(nodeId);
        const ins = this.db.prepare('INSERT INTO node_services VALUES (?, ?, ?)');
        for (const s of services) ins.run(nodeId, s.name, s.description);
      })
      .immediate();
  }
  async listNodeServices(nodeId: string): Promise<NodeServiceRecord[]> {
    return (
      this.db
        .prepare('SELECT * FROM node_services WHERE node_id = ? ORDER BY name')
        .all(nodeId) as {
        node_id: string;
        name: string;
        description: string | null;
      }[]
    ).map((r) => ({ nodeId: r.node_id, name: r.name, description: r.description }));
  }
  async listServiceNodes(name: string) {
    return (
      this.db.prepare('SELECT node_id FROM node_services WHERE name = ?').all(name) as {
        node_id: string;
      }[]
    ).map((r) => r.node_id);
  }

  // serving grants
  async addServeGrant(service: string, userId: string) {
    this.db.prepare('INSERT OR IGNORE INTO serve_grants VALUES (?, ?)').run(service, userId);
  }
  async removeServeGrant(service: string, userId: string) {
    this.db
      .prepare('DELETE FROM serve_grants WHERE service = ? AND user_id = ?')
      .run(service, userId);
  }
  async listServeGrants(service: string) {
    return (
      this.db.prepare('SELECT user_id FROM serve_grants WHERE service = ?').all(service) as {
        user_id: string;
      }[]
    ).map((r) => r.user_id);
  }
  async hasServeGrant(service: string, userId: string) {
    return (
      this.db
        .prepare('SELECT 1 FROM serve_grants WHERE service = ? AND user_id = ?')
        .get(service, userId) !== undefined
    );
  }

  // shares
  async addShare(service: string, userId: string) {
    this.db.prepare('INSERT OR IGNORE INTO shares VALUES (?, ?)').run(service, userId);
  }
  async removeShare(service: string, userId: string) {
    this.db.prepare('DELETE FROM shares WHERE service = ? AND user_id = ?').run(service, userId);
  }
  async listShares(service: string) {
    return (
      this.db.prepare('SELECT user_id FROM shares WHERE service = ?').all(service) as {
        user_id: string;
      }[]
    ).map((r) => r.user_id);
  }
  async hasShare(service: string, userId: string) {
    return (
      this.db
        .prepare('SELECT 1 FROM shares WHERE service = ? AND user_id = ?')
        .get(service, userId) !== undefined
    );
  }

  // settings
  async getSetting(key: string) {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return r?.value ?? null;
  }
  async setSettingIfAbsent(key: string, value: string) {
    this.db.prepare('INSERT OR IGNORE INTO settings VALUES (?, ?)').run(key, value);
    return (await this.getSetting(key))!;
  }

  // one-time values
  async putOneTime(kind: string, key: string, value: string, expiresAt: number) {
    this.db
      .prepare('INSERT OR REPLACE INTO one_time VALUES (?, ?, ?, ?)')
      .run(kind, key, value, expiresAt);
  }
  async putOneTimeIfAbsent(
    kind: string,
    key: string,
    value: string,
    expiresAt: number,
    now: number,
  ) {
    return this.db
      .transaction(() => {
        this.db
          .prepare('DELETE FROM one_time WHERE kind = ? AND key = ? AND expires_at <= ?')
          .run(kind, key, now);
        return (
          this.db
            .prepare('INSERT OR IGNORE INTO one_time VALUES (?, ?, ?, ?)')
            .run(kind, key, value, expiresAt).changes > 0
        );
      })
      .immediate();
  }
  async purgeExpiredOneTime(now: number) {
    return this.db.prepare('DELETE FROM one_time WHERE expires_at <= ?').run(now).changes;
  }
  async peekOneTime(kind: string, key: string, now: number) {
    const r = this.db
      .prepare('SELECT value, expires_at FROM one_time WHERE kind = ? AND key = ?')
      .get(kind, key) as { value: string; expires_at: number } | undefined;
    return r && r.expires_at > now ? r.value : null;
  }
  async takeOneTime(kind: string, key: string, now: number) {
    return this.db
      .transaction(() => {
        const r = this.db
          .prepare('SELECT value, expires_at FROM one_time WHERE kind = ? AND key = ?')
          .get(kind, key) as { value: string; expires_at: number } | undefined;
        if (!r) return null;
        this.db.prepare('DELETE FROM one_time WHERE kind = ? AND key = ?').run(kind, key);
        return r.expires_at > now ? r.value : null;
      })
      .immediate();
  }

  // deployments
  async putDeployment(d: NewDeployment): Promise<DeploymentRecord> {
    const spec = specToStore(d);
    // IMMEDIATE: the write lock before the read, so another process on the
    // same file cannot slip in between the ownership check and the write.
    return this.db
      .transaction((): DeploymentRecord => {
        const cur = this.db.prepare('SELECT * FROM deployments WHERE name = ?').get(d.name) as
          DeploymentRow | undefined;
        if (cur && cur.owner_id !== d.ownerId)
          throw new NameTakenError(d.name, cur.owner_id, 'deployment');
        const svc = this.db.prepare('SELECT owner_id FROM services WHERE name = ?').get(d.name) as
          { owner_id: string } | undefined;
        if (svc && svc.owner_id !== d.ownerId)
          throw new NameTakenError(d.name, svc.owner_id, 'service');
        if (!svc) {
          this.db
            .prepare('INSERT INTO services VALUES (?, ?, ?, ?)')
            .run(d.name, d.ownerId, d.spec.access, d.now);
        }
        if (cur) {
          this.db
            .prepare(
              'UPDATE deployments SET spec = ?, version = version + 1, updated_at = ? WHERE name = ?',
            )
            .run(spec, d.now, d.name);
        } else {
          this.db
            .prepare('INSERT INTO deployments VALUES (?, ?, ?, 1, ?, ?)')
            .run(d.name, d.ownerId, spec, d.now, d.now);
        }
        return toDeployment(
          this.db.prepare('SELECT * FROM deployments WHERE name = ?').get(d.name) as DeploymentRow,
        );
      })
      .immediate();
  }
  async getDeployment(name: string) {
    const r = this.db.prepare('SELECT * FROM deployments WHERE name = ?').get(name) as
      DeploymentRow | undefined;
    return r ? toDeployment(r) : null;
  }
  async listDeployments(ownerId?: string) {
    const rows = (
      ownerId === undefined
        ? this.db.prepare('SELECT * FROM deployments ORDER BY name').all()
        : this.db.prepare('SELECT * FROM deployments WHERE owner_id = ? ORDER BY name').all(ownerId)
    ) as DeploymentRow[];
    return rows.map(toDeployment);
  }
  async deleteDeployment(name: string) {
    // allocations and events go with it (ON DELETE CASCADE)
    return this.db.prepare('DELETE FROM deployments WHERE name = ?').run(name).changes > 0;
  }

  // allocations
  async putAllocations(
    deployment: string,
    expectedVersion: number,
    changes: AllocationChanges,
  ): Promise<AppliedPlan> {
    const place = changes.place ?? [];
    const gone = [...(changes.stop ?? []), ...(changes.remove ?? [])];
    return this.db
      .transaction((): AppliedPlan => {
        const d = this.db
          .prepare('SELECT version FROM deployments WHERE name = ?')
          .get(deployment) as { version: number } | undefined;
        if (!d) throw new PeerwayError('not_found', `no deployment named "${deployment}"`);
        if (d.version !== expectedVersion) {
          throw new PlanConflictError(deployment, 'stale_version', {
            expected: expectedVersion,
            actual: d.version,
          });
        }
        const owner = this.db.prepare('SELECT deployment FROM allocations WHERE id = ?');
        for (const id of gone) {
          const r = owner.get(id) as { deployment: string } | undefined;
          if (r?.deployment !== deployment) {
            throw new PeerwayError(
              'bad_request',
              `allocation ${id} is not one of deployment "${deployment}"`,
            );
          }
        }
        const stop = this.db.prepare(
          "UPDATE allocations SET desired = 'stop', version = version + 1 WHERE id = ? AND desired <> 'stop'",
        );
        for (const id of changes.stop ?? []) stop.run(id);
        const remove = this.db.prepare('DELETE FROM allocations WHERE id = ?');
        for (const id of changes.remove ?? []) remove.run(id);

        // Room on each node that gets replicas, after the stops and removals above.
        const need = new Map<string, ReplicaResources>();
        for (const p of place) need.set(p.nodeId, sum(need.get(p.nodeId) ?? ZERO, p.resources));
        for (const [nodeId, more] of need) {
          const report = this.nodeResources(nodeId);
          if (!report) continue;
          const cap = deployableResources(report);
          const after = sum(this.allocatedOnSync(nodeId), more);
          if (
            after.cpuMillis > cap.cpuMillis ||
            after.memoryBytes > cap.memoryBytes ||
            after.gpu > cap.gpu
          ) {
            const node = this.db.prepare('SELECT short_id FROM nodes WHERE id = ?').get(nodeId) as {
              short_id: string;
            };
            throw new PlanConflictError(deployment, 'node_full', { node: node.short_id });
          }
        }

        const insert = this.db.prepare(
          "INSERT INTO allocations VALUES (?, ?, ?, 'pending', NULL, ?, ?, ?, 'run', ?, ?, 1, 0)",
        );
        const placed = place.map((p): AllocationRecord => {
          const a = newAllocation(deployment, p, changes.now);
          insert.run(
            a.id,
            deployment,
            a.nodeId,
            a.resources.cpuMillis,
            a.resources.memoryBytes,
            a.resources.gpu,
            a.createdAt,
            a.since,
          );
          return a;
        });
        this.db
          .prepare('UPDATE deployments SET version = version + 1 WHERE name = ?')
          .run(deployment);
        return { version: expectedVersion + 1, placed };
      })
      .immediate();
  }
  async getAllocation(id: string) {
    const r = this.db.prepare('SELECT * FROM allocations WHERE id = ?').get(id) as
      AllocationRow | undefined;
    return r ? toAllocation(r) : null;
  }
  async updateAllocationState(report: AllocationReport): Promise<AllocationRecord | null> {
    checkReplicaState(report.state);
    return this.db
      .transaction((): AllocationRecord | null => {
        const r = this.db.prepare('SELECT * FROM allocations WHERE id = ?').get(report.id) as
          AllocationRow | undefined;
        if (!r || r.node_id !== report.nodeId) return null;
        const before = toAllocation(r);
        const a = applyReport(before, report);
        if (a !== before) {
          this.db
            .prepare(
              'UPDATE allocations SET state = ?, reason = ?, since = ?, version = ?, failures = ? WHERE id = ?',
            )
            .run(a.state, a.reason, a.since, a.version, a.failures, a.id);
        }
        return a;
      })
      .immediate();
  }
  async listAllocations(filter: { deployment?: string; nodeId?: string } = {}) {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.deployment !== undefined) {
      where.push('deployment = ?');
      args.push(filter.deployment);
    }
    if (filter.nodeId !== undefined) {
      where.push('node_id = ?');
      args.push(filter.nodeId);
    }
    const sql = `SELECT * FROM allocations ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(...args) as AllocationRow[]).map(toAllocation);
  }
  async allocatedOn(nodeId: string) {
    return this.allocatedOnSync(nodeId);
  }
  private allocatedOnSync(nodeId: string): ReplicaResources {
    const r = this.db
      .prepare(
        `SELECT COALESCE(SUM(cpu_millis), 0) AS c, COALESCE(SUM(memory_bytes), 0) AS m, COALESCE(SUM(gpu), 0) AS g
         FROM allocations WHERE node_id = ? AND desired = 'run'`,
      )
      .get(nodeId) as { c: number; m: number; g: number };
    return { cpuMillis: r.c, memoryBytes: r.m, gpu: r.g };
  }
  private nodeResources(nodeId: string): NodeResources | null {
    const r = this.db.prepare('SELECT resources FROM nodes WHERE id = ?').get(nodeId) as
      { resources: string | null } | undefined;
    return resourcesFromStore(r?.resources);
  }

  // deployment events
  async addDeploymentEvent(name: string, e: NewDeploymentEvent) {
    return this.db
      .transaction(() => {
        const ins = this.db
          .prepare(
            `INSERT INTO deployment_events (deployment, at, kind, message, allocation)
           SELECT name, ?, ?, ?, ? FROM deployments WHERE name = ?`,
          )
          .run(e.at, e.kind, boundedText(e.message), e.allocation ?? null, name);
        if (ins.changes === 0) return false;
        this.db
          .prepare(
            `DELETE FROM deployment_events WHERE deployment = ? AND seq <= (
             SELECT seq FROM deployment_events WHERE deployment = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
          )
          .run(name, name, MAX_DEPLOYMENT_EVENTS);
        return true;
      })
      .immediate();
  }
  async listDeploymentEvents(name: string, limit: number): Promise<DeploymentEvent[]> {
    const rows = this.db
      .prepare(
        'SELECT at, kind, message, allocation FROM deployment_events WHERE deployment = ? ORDER BY seq DESC LIMIT ?',
      )
      .all(name, Math.max(0, Math.floor(limit))) as DeploymentEvent[];
    return rows.reverse().map((r) => ({ ...r }));
  }

  // deploy grants
  async addDeployGrant(nodeId: string, userId: string) {
    this.db
      .transaction(() => {
        if (!this.db.prepare('SELECT 1 FROM nodes WHERE id = ?').get(nodeId))
          throw new PeerwayError('not_found', `no node ${nodeId}`);
        if (!this.db.prepare('SELECT 1 FROM users WHERE id = ?').get(userId))
          throw new PeerwayError('not_found', `no user ${userId}`);
        this.db.prepare('INSERT OR IGNORE INTO deploy_grants VALUES (?, ?)').run(nodeId, userId);
      })
      .immediate();
  }
  async removeDeployGrant(nodeId: string, userId: string) {
    this.db
      .prepare('DELETE FROM deploy_grants WHERE node_id = ? AND user_id = ?')
      .run(nodeId, userId);
  }
  async listDeployGrants(nodeId: string) {
    return (
      this.db
        .prepare('SELECT user_id FROM deploy_grants WHERE node_id = ? ORDER BY user_id')
        .all(nodeId) as { user_id: string }[]
    ).map((r) => r.user_id);
  }
  async deployableNodes(userId: string) {
    return (
      this.db
        .prepare('SELECT node_id FROM deploy_grants WHERE user_id = ? ORDER BY node_id')
        .all(userId) as { node_id: string }[]
    ).map((r) => r.node_id);
  }

  // node resources
  async putNodeResources(nodeId: string, report: NodeResources) {
    const json = resourcesToStore(nodeId, report);
    return (
      this.db.prepare('UPDATE nodes SET resources = ? WHERE id = ?').run(json, nodeId).changes > 0
    );
  }
}

function sum(a: ReplicaResources, b: ReplicaResources): ReplicaResources {
  return {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    gpu: a.gpu + b.gpu,
  };
}
