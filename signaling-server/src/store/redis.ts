/**
 * The Redis store, for several server instances sharing state. Same
 * interface and contract suite as SQLite. Every operation is O(1) or
 * O(log n) on hashes, sets and sorted sets; the atomic ones are Lua scripts.
 * Run Redis with AOF (`appendonly yes`) for durability.
 *
 * Keys (prefix `pw:`): user:<id> (hash), user:email:<lower> → id,
 * user:ext:<subject> → id, users (zset by creation), token:<id> (hash),
 * token:hash:<sha> → id, user:<id>:tokens (zset), node:<id> (hash),
 * node:short:<short> → id, nodes / nodes:public / owner:<uid>:nodes (zsets),
 * service:<name> (hash), owner:<uid>:services (zset), node:<id>:services
 * (hash name → description), service:<name>:nodes (set),
 * service:<name>:shares (set), service:<name>:servers (set: serving grants),
 * nodes:unclaimed (zset by lastSeen), settings (hash), once:<kind>:<key> (JSON).
 *
 * Deployments (schema 3): deploy:<name> (hash: name, ownerId, spec JSON,
 * version, createdAt, updatedAt), deploys / owner:<uid>:deploys (zsets, score
 * 0: by name), deploy:<name>:allocs (set of allocation IDs),
 * deploy:<name>:events (list of JSON, oldest first, the newest 200 kept),
 * alloc:<id> (hash: id, deployment, nodeId, state, reason (absent when
 * none), cpuMillis, memoryBytes, gpu, desired, createdAt, since, version,
 * failures), allocs (set: every allocation), node:<id>:allocs (set; kept
 * when the node goes, like the allocations), node:<id>:deployers (set: deploy
 * grants) and user:<uid>:deploynodes (set: the reverse). The node hash gains
 * resources (the report as JSON) and deployCpuMillis, deployMemoryBytes,
 * deployGpu (what it offers deployments, so the plan script checks room
 * without parsing JSON).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { PeerwayError } from '@peerway/protocol';
import type {
  AccessTokenRecord,
  ClaimResult,
  NodeRecord,
  NodeServiceRecord,
  ReserveResult,
  ServiceAccess,
  ServiceRecord,
  NewAccessToken,
  Store,
  User,
} from './store';
import { newAccessTokenRecord } from './store';
import { resourcesFromStore } from './checks';
import { RedisClusterStore } from './cluster-redis';

const P = 'pw:';

const CLAIM = `
local node = KEYS[1]
local owner = redis.call('HGET', node, 'ownerId')
if not owner then
  if ARGV[3] == '' then return 'not_found' end
  redis.call('HSET', node, 'id', ARGV[1], 'shortId', ARGV[3], 'name', ARGV[4], 'ownerId', '', 'isPublic', '0', 'createdAt', ARGV[5], 'lastSeen', ARGV[5])
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  owner = ''
end
if owner == ARGV[2] then return 'mine' end
if owner ~= '' then return 'other' end
redis.call('HSET', node, 'ownerId', ARGV[2])
redis.call('ZADD', KEYS[4], redis.call('HGET', node, 'createdAt'), ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 'claimed'`;

/** Removes one node if it is still unclaimed and unseen since ARGV[2]; 1 if it did. */
const PURGE_UNCLAIMED = `
local owner = redis.call('HGET', KEYS[1], 'ownerId')
if owner == false or owner ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
local seen = tonumber(redis.call('HGET', KEYS[1], 'lastSeen') or '0')
if seen >= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[3], seen, ARGV[1])
  return 0
end
local short = redis.call('HGET', KEYS[1], 'shortId')
local deployers = ARGV[4] .. 'node:' .. ARGV[1] .. ':deployers'
for _, u in ipairs(redis.call('SMEMBERS', deployers)) do
  redis.call('SREM', ARGV[4] .. 'user:' .. u .. ':deploynodes', ARGV[1])
end
redis.call('DEL', KEYS[1], KEYS[2], deployers)
if short and redis.call('GET', ARGV[3] .. short) == ARGV[1] then redis.call('DEL', ARGV[3] .. short) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1`;

const RESERVE = `
local owner = redis.call('HGET', KEYS[1], 'ownerId')
if owner then return owner end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'ownerId', ARGV[2], 'access', ARGV[3], 'createdAt', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return ARGV[2]`;

/**
 * Creates or updates a deployment and reserves its service name, unless
 * another user holds either. Returns {'ok', version, createdAt} or
 * {'taken', 'deployment'|'service', ownerId}.
 */
const toUser = (h: Record<string, string>): User => ({
  id: h.id!,
  email: h.email!,
  passwordHash: h.passwordHash || null,
  isAdmin: h.isAdmin === '1',
  externalSubject: h.externalSubject || null,
  createdAt: Number(h.createdAt),
});
const toNode = (h: Record<string, string>): NodeRecord => ({
  id: h.id!,
  shortId: h.shortId!,
  name: h.name!,
  ownerId: h.ownerId || null,
  isPublic: h.isPublic === '1',
  createdAt: Number(h.createdAt),
  lastSeen: Number(h.lastSeen),
  resources: resourcesFromStore(h.resources),
});
const toToken = (h: Record<string, string>): AccessTokenRecord => ({
  id: h.id!,
  userId: h.userId!,
  name: h.name!,
  tokenHash: h.tokenHash!,
  createdAt: Number(h.createdAt),
  lastUsedAt: h.lastUsedAt ? Number(h.lastUsedAt) : null,
  expiresAt: h.expiresAt ? Number(h.expiresAt) : null,
});
const toService = (h: Record<string, string>): ServiceRecord => ({
  name: h.name!,
  ownerId: h.ownerId!,
  access: h.access as ServiceAccess,
  createdAt: Number(h.createdAt),
});
const empty = (h: Record<string, string>) => Object.keys(h).length === 0;

/** The jobs methods (schema 4) come from RedisJobStore (./jobs-redis.ts), which documents its keys. */
export class RedisStore extends RedisClusterStore implements Store {
  constructor(url: string) {
    // Auto-pipelining: the commands of one tick (many requests' and sweeps'
    // at once) go out in one write. Without it every command was its own
    // write(2): a quarter of the server's busy time in bench:jobs.
    super(
      new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false, enableAutoPipelining: true }),
    );
  }

  async migrate(): Promise<void> {
    // Schema-less; the version marks the key layout for migrations.
    await this.redis.hsetnx(`${P}meta`, 'schema', '1');
    if ((await this.redis.hget(`${P}meta`, 'schema')) === '1') {
      // 2: the index of unclaimed nodes (by lastSeen) the purge walks.
      for (const n of await this.listAllNodes())
        if (!n.ownerId) await this.redis.zadd(`${P}nodes:unclaimed`, n.lastSeen, n.id);
      await this.redis.hset(`${P}meta`, 'schema', '2');
    }
    if ((await this.redis.hget(`${P}meta`, 'schema')) === '2') {
      // 3: deployments, allocations, events, deploy grants, node resources:
      // new keys only, nothing earlier changes shape.
      await this.redis.hset(`${P}meta`, 'schema', '3');
    }
    if ((await this.redis.hget(`${P}meta`, 'schema')) === '3') {
      // 4: jobs, their queues and indexes, job grants: new keys only.
      await this.redis.hset(`${P}meta`, 'schema', '4');
    }
  }
  async close(): Promise<void> {
    await this.redis.quit();
  }

  // users
  async createUser(u: Omit<User, 'id' | 'createdAt'>): Promise<User> {
    const user: User = { ...u, id: randomUUID(), createdAt: Date.now() };
    const ok = await this.redis.set(`${P}user:email:${u.email.toLowerCase()}`, user.id, 'NX');
    if (!ok) throw new PeerwayError('conflict', `a user with email ${u.email} already exists`);
    if (
      u.externalSubject &&
      !(await this.redis.set(`${P}user:ext:${u.externalSubject}`, user.id, 'NX'))
    ) {
      await this.redis.del(`${P}user:email:${u.email.toLowerCase()}`);
      throw new PeerwayError('conflict', 'that external identity already has a user');
    }
    await this.redis
      .multi()
      .hset(`${P}user:${user.id}`, {
        id: user.id,
        email: user.email,
        passwordHash: user.passwordHash ?? '',
        isAdmin: user.isAdmin ? '1' : '0',
        externalSubject: user.externalSubject ?? '',
        createdAt: String(user.createdAt),
      })
      .zadd(`${P}users`, user.createdAt, user.id)
      .exec();
    return user;
  }
  async getUserById(id: string) {
    const h = await this.redis.hgetall(`${P}user:${id}`);
    return empty(h) ? null : toUser(h);
  }
  async getUserByEmail(email: string) {
    const id = await this.redis.get(`${P}user:email:${email.toLowerCase()}`);
    return id ? this.getUserById(id) : null;
  }
  async getUserByExternalSubject(subject: string) {
    const id = await this.redis.get(`${P}user:ext:${subject}`);
    return id ? this.getUserById(id) : null;
  }
  async listUsers() {
    const ids = await this.redis.zrange(`${P}users`, '0', '-1');
    return this.hashes(
      ids.map((i) => `${P}user:${i}`),
      toUser,
    );
  }
  async countUsers() {
    return this.redis.zcard(`${P}users`);
  }

  // tokens
  async createAccessToken(t: NewAccessToken) {
    const rec = newAccessTokenRecord(t, Date.now());
    await this.redis
      .multi()
      .hset(`${P}token:${t.id}`, {
        id: t.id,
        userId: t.userId,
        name: t.name,
        tokenHash: t.tokenHash,
        createdAt: String(rec.createdAt),
        lastUsedAt: '',
        expiresAt: rec.expiresAt === null ? '' : String(rec.expiresAt),
      })
      .set(`${P}token:hash:${t.tokenHash}`, t.id)
      .zadd(`${P}user:${t.userId}:tokens`, rec.createdAt, t.id)
      .exec();
    return rec;
  }
  async findAccessTokenByHash(tokenHash: string) {
    const id = await this.redis.get(`${P}token:hash:${tokenHash}`);
    if (!id) return null;
    const h = await this.redis.hgetall(`${P}token:${id}`);
    return empty(h) ? null : toToken(h);
  }
  async touchAccessToken(id: string, now: number) {
    if (await this.redis.exists(`${P}token:${id}`))
      await this.redis.hset(`${P}token:${id}`, 'lastUsedAt', String(now));
  }
  async listAccessTokens(userId: string) {
    const ids = await this.redis.zrange(`${P}user:${userId}:tokens`, '0', '-1');
    return this.hashes(
      ids.map((i) => `${P}token:${i}`),
      toToken,
    );
  }
  async deleteAccessToken(userId: string, id: string) {
    const h = await this.redis.hgetall(`${P}token:${id}`);
    if (empty(h) || h.userId !== userId) return false;
    await this.redis
      .multi()
      .del(`${P}token:${id}`)
      .del(`${P}token:hash:${h.tokenHash}`)
      .zrem(`${P}user:${userId}:tokens`, id)
      .exec();
    return true;
  }

  // nodes
  async upsertNode(n: { id: string; shortId: string; name: string; now: number }) {
    const key = `${P}node:${n.id}`;
    if (await this.redis.hsetnx(key, 'id', n.id)) {
      await this.redis
        .multi()
        .hset(key, {
          shortId: n.shortId,
          name: n.name,
          ownerId: '',
          isPublic: '0',
          createdAt: String(n.now),
          lastSeen: String(n.now),
        })
        .set(`${P}node:short:${n.shortId}`, n.id)
        .zadd(`${P}nodes`, n.now, n.id)
        .zadd(`${P}nodes:unclaimed`, n.now, n.id)
        .exec();
    } else {
      await this.redis.hset(key, { name: n.name, lastSeen: String(n.now) });
      await this.redis.zadd(`${P}nodes:unclaimed`, 'XX', n.now, n.id);
    }
    return (await this.getNode(n.id))!;
  }
  async getNode(id: string) {
    const h = await this.redis.hgetall(`${P}node:${id}`);
    return empty(h) ? null : toNode(h);
  }
  async getNodeByShortId(shortId: string) {
    const id = await this.redis.get(`${P}node:short:${shortId}`);
    return id ? this.getNode(id) : null;
  }
  async listNodesByOwner(ownerId: string) {
    const ids = await this.redis.zrange(`${P}owner:${ownerId}:nodes`, '0', '-1');
    return this.hashes(
      ids.map((i) => `${P}node:${i}`),
      toNode,
    );
  }
  async listPublicNodes() {
    const ids = await this.redis.zrange(`${P}nodes:public`, '0', '-1');
    return (
      await this.hashes(
        ids.map((i) => `${P}node:${i}`),
        toNode,
      )
    ).filter((n) => n.ownerId);
  }
  async listAllNodes() {
    const ids = await this.redis.zrange(`${P}nodes`, '0', '-1');
    return this.hashes(
      ids.map((i) => `${P}node:${i}`),
      toNode,
    );
  }
  async claimNode(
    id: string,
    ownerId: string,
    create?: { shortId: string; name: string; now: number },
  ): Promise<ClaimResult> {
    const r = (await this.redis.eval(
      CLAIM,
      5,
      `${P}node:${id}`,
      `${P}node:short:${create?.shortId ?? ''}`,
      `${P}nodes`,
      `${P}owner:${ownerId}:nodes`,
      `${P}nodes:unclaimed`,
      id,
      ownerId,
      create?.shortId ?? '',
      create?.name ?? '',
      String(create?.now ?? 0),
    )) as string;
    if (r === 'not_found') return { ok: false, reason: 'not_found' };
    if (r === 'other') return { ok: false, reason: 'claimed_by_other' };
    return { ok: true, node: (await this.getNode(id))!, alreadyYours: r === 'mine' };
  }
  async setNodeVisibility(id: string, isPublic: boolean) {
    const n = await this.getNode(id);
    if (!n) return;
    const m = this.redis.multi().hset(`${P}node:${id}`, 'isPublic', isPublic ? '1' : '0');
    if (isPublic) m.zadd(`${P}nodes:public`, n.createdAt, id);
    else m.zrem(`${P}nodes:public`, id);
    await m.exec();
  }
  async setNodeLastSeen(id: string, now: number) {
    if (await this.redis.exists(`${P}node:${id}`)) {
      await this.redis.hset(`${P}node:${id}`, 'lastSeen', String(now));
      await this.redis.zadd(`${P}nodes:unclaimed`, 'XX', now, id);
    }
  }
  async deleteNode(id: string) {
    const n = await this.getNode(id);
    if (!n) return;
    const names = await this.redis.hkeys(`${P}node:${id}:services`);
    const m = this.redis
      .multi()
      .del(`${P}node:${id}`, `${P}node:${id}:services`)
      .del(`${P}node:short:${n.shortId}`)
      .zrem(`${P}nodes`, id)
      .zrem(`${P}nodes:public`, id)
      .zrem(`${P}nodes:unclaimed`, id);
    if (n.ownerId) m.zrem(`${P}owner:${n.ownerId}:nodes`, id);
    for (const s of names) m.srem(`${P}service:${s}:nodes`, id);
    for (const u of await this.redis.smembers(`${P}node:${id}:deployers`))
      m.srem(`${P}user:${u}:deploynodes`, id);
    m.del(`${P}node:${id}:deployers`);
    await m.exec();
  }

  async purgeUnclaimedNodes(lastSeenBefore: number, limit: number) {
    const ids = await this.redis.zrangebyscore(
      `${P}nodes:unclaimed`,
      '-inf',
      `(${lastSeenBefore}`,
      'LIMIT',
      0,
      limit,
    );
    const removed: string[] = [];
    for (const id of ids) {
      const r = await this.redis.eval(
        PURGE_UNCLAIMED,
        5,
        `${P}node:${id}`,
        `${P}node:${id}:services`,
        `${P}nodes:unclaimed`,
        `${P}nodes`,
        `${P}nodes:public`,
        id,
        String(lastSeenBefore),
        `${P}node:short:`,
        P,
      );
      if (r === 1) removed.push(id);
    }
    return removed;
  }
  async countUnclaimedNodes() {
    return this.redis.zcard(`${P}nodes:unclaimed`);
  }

  // services
  async reserveService(
    name: string,
    ownerId: string,
    access: ServiceAccess,
    now: number,
  ): Promise<ReserveResult> {
    const owner = (await this.redis.eval(
      RESERVE,
      2,
      `${P}service:${name}`,
      `${P}owner:${ownerId}:services`,
      name,
      ownerId,
      access,
      String(now),
    )) as string;
    if (owner !== ownerId) return { ok: false, ownerId: owner };
    return { ok: true, service: (await this.getService(name))! };
  }
  async getService(name: string) {
    const h = await this.redis.hgetall(`${P}service:${name}`);
    return empty(h) ? null : toService(h);
  }
  async listServicesByOwner(ownerId: string) {
    const names = await this.redis.zrange(`${P}owner:${ownerId}:services`, '0', '-1');
    return this.hashes(
      names.map((n) => `${P}service:${n}`),
      toService,
    );
  }
  async setServiceAccess(name: string, access: ServiceAccess) {
    if (await this.redis.exists(`${P}service:${name}`))
      await this.redis.hset(`${P}service:${name}`, 'access', access);
  }
  async setNodeServices(nodeId: string, services: { name: string; description: string | null }[]) {
    const old = await this.redis.hkeys(`${P}node:${nodeId}:services`);
    const m = this.redis.multi().del(`${P}node:${nodeId}:services`);
    for (const s of old) m.srem(`${P}service:${s}:nodes`, nodeId);
    for (const s of services) {
      m.hset(`${P}node:${nodeId}:services`, s.name, s.description ?? '\u0000');
      m.sadd(`${P}service:${s.name}:nodes`, nodeId);
    }
    await m.exec();
  }
  async listNodeServices(nodeId: string): Promise<NodeServiceRecord[]> {
    const h = await this.redis.hgetall(`${P}node:${nodeId}:services`);
    return Object.keys(h)
      .sort()
      .map((name) => ({ nodeId, name, description: h[name] === '\u0000' ? null : h[name]! }));
  }
  async listServiceNodes(name: string) {
    return this.redis.smembers(`${P}service:${name}:nodes`);
  }

  // serving grants
  async addServeGrant(service: string, userId: string) {
    await this.redis.sadd(`${P}service:${service}:servers`, userId);
  }
  async removeServeGrant(service: string, userId: string) {
    await this.redis.srem(`${P}service:${service}:servers`, userId);
  }
  async listServeGrants(service: string) {
    return this.redis.smembers(`${P}service:${service}:servers`);
  }
  async hasServeGrant(service: string, userId: string) {
    return (await this.redis.sismember(`${P}service:${service}:servers`, userId)) === 1;
  }

  // shares
  async addShare(service: string, userId: string) {
    await this.redis.sadd(`${P}service:${service}:shares`, userId);
  }
  async removeShare(service: string, userId: string) {
    await this.redis.srem(`${P}service:${service}:shares`, userId);
  }
  async listShares(service: string) {
    return this.redis.smembers(`${P}service:${service}:shares`);
  }
  async hasShare(service: string, userId: string) {
    return (await this.redis.sismember(`${P}service:${service}:shares`, userId)) === 1;
  }

  // settings
  async getSetting(key: string) {
    return this.redis.hget(`${P}settings`, key);
  }
  async setSettingIfAbsent(key: string, value: string) {
    await this.redis.hsetnx(`${P}settings`, key, value);
    return (await this.getSetting(key))!;
  }

  // one-time values: expiry is judged against the caller's `now` (the interface's
  // clock), and Redis also drops the key after its expiry for cleanup.
  async putOneTime(kind: string, key: string, value: string, expiresAt: number) {
    await this.redis.set(
      `${P}once:${kind}:${key}`,
      JSON.stringify({ value, expiresAt }),
      'PXAT',
      Math.max(expiresAt, Date.now() + 1000),
    );
  }
  async putOneTimeIfAbsent(
    kind: string,
    key: string,
    value: string,
    expiresAt: number,
    now: number,
  ) {
    const k = `${P}once:${kind}:${key}`;
    // A value past its expiry by the caller's clock but not yet dropped by Redis counts as absent.
    const held = await this.redis.get(k);
    if (held && (JSON.parse(held) as { expiresAt: number }).expiresAt <= now) {
      await this.redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        1,
        k,
        held,
      );
    }
    const ok = await this.redis.set(
      k,
      JSON.stringify({ value, expiresAt }),
      'PXAT',
      Math.max(expiresAt, Date.now() + 1000),
      'NX',
    );
    return ok === 'OK';
  }
  async purgeExpiredOneTime(_now: number) {
    return 0; // Redis drops each key at its expiry (PXAT)
  }
  async peekOneTime(kind: string, key: string, now: number) {
    const raw = await this.redis.get(`${P}once:${kind}:${key}`);
    if (!raw) return null;
    const v = JSON.parse(raw) as { value: string; expiresAt: number };
    return v.expiresAt > now ? v.value : null;
  }
  async takeOneTime(kind: string, key: string, now: number) {
    const raw = await this.redis.getdel(`${P}once:${kind}:${key}`);
    if (!raw) return null;
    const v = JSON.parse(raw) as { value: string; expiresAt: number };
    return v.expiresAt > now ? v.value : null;
  }
}
