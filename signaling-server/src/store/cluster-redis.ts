/**
 * The cluster part of the Redis store (RedisStore extends this class):
 * deployments, their allocations and events, deploy grants, and what nodes
 * report of their resources. The keys are listed in ./redis.ts.
 */
import {
  PeerwayError,
  deployableResources,
  type NodeResources,
  type ReplicaResources,
  type ReplicaState,
} from '@peerway/protocol';
import type {
  AllocationChanges,
  AllocationDesired,
  AllocationRecord,
  AllocationReport,
  AppliedPlan,
  DeploymentEvent,
  DeploymentRecord,
  NewDeployment,
  NewDeploymentEvent,
} from './store';
import { MAX_DEPLOYMENT_EVENTS, NameTakenError, PlanConflictError, newAllocation } from './store';
import {
  applyReport,
  boundedText,
  checkReplicaState,
  resourcesToStore,
  specFromStore,
  specToStore,
} from './checks';
import { RedisJobStore } from './jobs-redis';

const P = 'pw:';

const PUT_DEPLOYMENT = `
local owner = redis.call('HGET', KEYS[1], 'ownerId')
if owner and owner ~= ARGV[2] then return {'taken', 'deployment', owner} end
local sowner = redis.call('HGET', KEYS[2], 'ownerId')
if sowner and sowner ~= ARGV[2] then return {'taken', 'service', sowner} end
if not sowner then
  redis.call('HSET', KEYS[2], 'name', ARGV[1], 'ownerId', ARGV[2], 'access', ARGV[5], 'createdAt', ARGV[4])
  redis.call('ZADD', KEYS[5], 0, ARGV[1])
end
if owner then
  redis.call('HSET', KEYS[1], 'spec', ARGV[3], 'updatedAt', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
else
  redis.call('HSET', KEYS[1], 'name', ARGV[1], 'ownerId', ARGV[2], 'spec', ARGV[3], 'version', '1', 'createdAt', ARGV[4], 'updatedAt', ARGV[4])
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('ZADD', KEYS[4], 0, ARGV[1])
end
return {'ok', redis.call('HGET', KEYS[1], 'version'), redis.call('HGET', KEYS[1], 'createdAt')}`;

/**
 * Applies a plan: checks the version, that every ID is of this deployment
 * and that each node placed on has room (after the plan's own stops and
 * removals), and only then writes (a script that fails midway keeps what
 * it wrote). ARGV: expected version, now, key prefix, deployment, counts of
 * stops, removals and placements, the stop IDs, the removal IDs, then per
 * placement id, nodeId, cpuMillis, memoryBytes, gpu.
 * Returns {'ok', version} | {'not_found'} | {'stale', version} |
 * {'foreign', id} | {'full', shortId}.
 */
const PUT_ALLOCATIONS = `
local P = ARGV[3]
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return {'not_found'} end
if v ~= ARGV[1] then return {'stale', v} end
local ns, nr, np = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local first_place = 8 + ns + nr
local freed, seen = {}, {}
for i = 8, first_place - 1 do
  local id = ARGV[i]
  local a = redis.call('HMGET', P .. 'alloc:' .. id, 'deployment', 'nodeId', 'desired', 'cpuMillis', 'memoryBytes', 'gpu')
  if a[1] ~= ARGV[4] then return {'foreign', id} end
  if not seen[id] and a[3] == 'run' then
    local f = freed[a[2]] or {0, 0, 0}
    f[1] = f[1] + tonumber(a[4]); f[2] = f[2] + tonumber(a[5]); f[3] = f[3] + tonumber(a[6])
    freed[a[2]] = f
  end
  seen[id] = true
end
local need, order = {}, {}
for k = 0, np - 1 do
  local i = first_place + k * 5
  local node = ARGV[i + 1]
  if not need[node] then need[node] = {0, 0, 0}; order[#order + 1] = node end
  local n = need[node]
  n[1] = n[1] + tonumber(ARGV[i + 2]); n[2] = n[2] + tonumber(ARGV[i + 3]); n[3] = n[3] + tonumber(ARGV[i + 4])
end
for _, node in ipairs(order) do
  local nk = P .. 'node:' .. node
  local cap = redis.call('HMGET', nk, 'deployCpuMillis', 'deployMemoryBytes', 'deployGpu', 'shortId')
  if cap[1] then
    local used = {0, 0, 0}
    for _, id in ipairs(redis.call('SMEMBERS', nk .. ':allocs')) do
      local a = redis.call('HMGET', P .. 'alloc:' .. id, 'desired', 'cpuMillis', 'memoryBytes', 'gpu')
      if a[1] == 'run' then
        used[1] = used[1] + tonumber(a[2]); used[2] = used[2] + tonumber(a[3]); used[3] = used[3] + tonumber(a[4])
      end
    end
    local f = freed[node] or {0, 0, 0}
    for d = 1, 3 do
      if used[d] - f[d] + need[node][d] > tonumber(cap[d]) then return {'full', cap[4]} end
    end
  end
end
for i = 8, 7 + ns do
  local k = P .. 'alloc:' .. ARGV[i]
  if redis.call('HGET', k, 'desired') ~= 'stop' then
    redis.call('HSET', k, 'desired', 'stop')
    redis.call('HINCRBY', k, 'version', 1)
  end
end
for i = 8 + ns, first_place - 1 do
  local id = ARGV[i]
  local k = P .. 'alloc:' .. id
  local node = redis.call('HGET', k, 'nodeId')
  if node then redis.call('SREM', P .. 'node:' .. node .. ':allocs', id) end
  redis.call('DEL', k)
  redis.call('SREM', KEYS[2], id)
  redis.call('SREM', KEYS[3], id)
end
for k = 0, np - 1 do
  local i = first_place + k * 5
  local id = ARGV[i]
  redis.call('HSET', P .. 'alloc:' .. id, 'id', id, 'deployment', ARGV[4], 'nodeId', ARGV[i + 1],
    'state', 'pending', 'cpuMillis', ARGV[i + 2], 'memoryBytes', ARGV[i + 3], 'gpu', ARGV[i + 4],
    'desired', 'run', 'createdAt', ARGV[2], 'since', ARGV[2], 'version', '1', 'failures', '0')
  redis.call('SADD', KEYS[2], id)
  redis.call('SADD', KEYS[3], id)
  redis.call('SADD', P .. 'node:' .. ARGV[i + 1] .. ':allocs', id)
end
return {'ok', redis.call('HINCRBY', KEYS[1], 'version', 1)}`;

/**
 * Writes an agent's report if the allocation is on the reporting node and
 * unchanged since it was read (version ARGV[1]). 1 written, 0 not this
 * node's (or gone), -1 changed meanwhile (read again).
 */
const UPDATE_ALLOCATION = `
local a = redis.call('HMGET', KEYS[1], 'nodeId', 'version')
if not a[1] or a[1] ~= ARGV[2] then return 0 end
if a[2] ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'since', ARGV[5], 'version', ARGV[6], 'failures', ARGV[7])
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'reason', ARGV[4]) else redis.call('HDEL', KEYS[1], 'reason') end
return 1`;

/** Removes a deployment, its allocations (from their nodes' sets too) and its events. */
const DELETE_DEPLOYMENT = `
local owner = redis.call('HGET', KEYS[1], 'ownerId')
if not owner then return 0 end
local P = ARGV[1]
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local k = P .. 'alloc:' .. id
  local node = redis.call('HGET', k, 'nodeId')
  if node then redis.call('SREM', P .. 'node:' .. node .. ':allocs', id) end
  redis.call('DEL', k)
  redis.call('SREM', KEYS[4], id)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', P .. 'owner:' .. owner .. ':deploys', ARGV[2])
return 1`;

/** Appends an event to an existing deployment's list and keeps the newest ARGV[2]. */
const ADD_EVENT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return 1`;

/** A deploy grant between a node and a user that both exist: 'ok', 'node' or 'user' (missing). */
const ADD_DEPLOY_GRANT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'node' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'user' end
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
return 'ok'`;

/** Sets fields of a node's hash only if the node exists (never recreates a removed one). */
const HSET_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

const toDeployment = (h: Record<string, string>): DeploymentRecord => ({
  name: h.name!,
  ownerId: h.ownerId!,
  spec: specFromStore(h.name!, h.spec!),
  version: Number(h.version),
  createdAt: Number(h.createdAt),
  updatedAt: Number(h.updatedAt),
});
const toAllocation = (h: Record<string, string>): AllocationRecord => ({
  id: h.id!,
  deployment: h.deployment!,
  nodeId: h.nodeId!,
  state: h.state as ReplicaState,
  reason: h.reason ?? null,
  resources: {
    cpuMillis: Number(h.cpuMillis),
    memoryBytes: Number(h.memoryBytes),
    gpu: Number(h.gpu),
  },
  desired: h.desired as AllocationDesired,
  createdAt: Number(h.createdAt),
  since: Number(h.since),
  version: Number(h.version),
  failures: Number(h.failures),
});
const byCreation = (a: AllocationRecord, b: AllocationRecord) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
/** An agent's report lost this many races in a row with other writers: give up. */
const MAX_REPORT_RETRIES = 20;
const empty = (h: Record<string, string>) => Object.keys(h).length === 0;

export class RedisClusterStore extends RedisJobStore {
  protected async hashes<T>(keys: string[], map: (h: Record<string, string>) => T): Promise<T[]> {
    if (keys.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const k of keys) pipe.hgetall(k);
    const res = (await pipe.exec()) ?? [];
    return res
      .map(([, h]) => h as Record<string, string>)
      .filter((h) => !empty(h))
      .map(map);
  }

  // deployments
  async putDeployment(d: NewDeployment): Promise<DeploymentRecord> {
    const spec = specToStore(d);
    const r = (await this.redis.eval(
      PUT_DEPLOYMENT,
      5,
      `${P}deploy:${d.name}`,
      `${P}service:${d.name}`,
      `${P}deploys`,
      `${P}owner:${d.ownerId}:deploys`,
      `${P}owner:${d.ownerId}:services`,
      d.name,
      d.ownerId,
      spec,
      String(d.now),
      d.spec.access,
    )) as string[];
    if (r[0] === 'taken') throw new NameTakenError(d.name, r[2]!, r[1] as 'deployment' | 'service');
    return {
      name: d.name,
      ownerId: d.ownerId,
      spec: specFromStore(d.name, spec),
      version: Number(r[1]),
      createdAt: Number(r[2]),
      updatedAt: d.now,
    };
  }
  async getDeployment(name: string) {
    const h = await this.redis.hgetall(`${P}deploy:${name}`);
    return empty(h) ? null : toDeployment(h);
  }
  async listDeployments(ownerId?: string) {
    const index = ownerId === undefined ? `${P}deploys` : `${P}owner:${ownerId}:deploys`;
    const names = await this.redis.zrange(index, '0', '-1');
    return this.hashes(
      names.map((n) => `${P}deploy:${n}`),
      toDeployment,
    );
  }
  async deleteDeployment(name: string) {
    const r = await this.redis.eval(
      DELETE_DEPLOYMENT,
      5,
      `${P}deploy:${name}`,
      `${P}deploy:${name}:allocs`,
      `${P}deploy:${name}:events`,
      `${P}allocs`,
      `${P}deploys`,
      P,
      name,
    );
    return r === 1;
  }

  // allocations
  async putAllocations(
    deployment: string,
    expectedVersion: number,
    changes: AllocationChanges,
  ): Promise<AppliedPlan> {
    const stop = changes.stop ?? [];
    const remove = changes.remove ?? [];
    const placed = (changes.place ?? []).map((p) => newAllocation(deployment, p, changes.now));
    const r = (await this.redis.eval(
      PUT_ALLOCATIONS,
      3,
      `${P}deploy:${deployment}`,
      `${P}deploy:${deployment}:allocs`,
      `${P}allocs`,
      String(expectedVersion),
      String(changes.now),
      P,
      deployment,
      String(stop.length),
      String(remove.length),
      String(placed.length),
      ...stop,
      ...remove,
      ...placed.flatMap((a) => [
        a.id,
        a.nodeId,
        String(a.resources.cpuMillis),
        String(a.resources.memoryBytes),
        String(a.resources.gpu),
      ]),
    )) as [string, string | number | undefined];
    switch (r[0]) {
      case 'ok':
        return { version: Number(r[1]), placed };
      case 'not_found':
        throw new PeerwayError('not_found', `no deployment named "${deployment}"`);
      case 'stale':
        throw new PlanConflictError(deployment, 'stale_version', {
          expected: expectedVersion,
          actual: Number(r[1]),
        });
      case 'full':
        throw new PlanConflictError(deployment, 'node_full', { node: String(r[1]) });
      default:
        throw new PeerwayError(
          'bad_request',
          `allocation ${String(r[1])} is not one of deployment "${deployment}"`,
        );
    }
  }
  async getAllocation(id: string) {
    const h = await this.redis.hgetall(`${P}alloc:${id}`);
    return empty(h) ? null : toAllocation(h);
  }
  async updateAllocationState(report: AllocationReport): Promise<AllocationRecord | null> {
    checkReplicaState(report.state);
    const key = `${P}alloc:${report.id}`;
    // Optimistic: read, apply the report, write only if nothing changed meanwhile.
    for (let i = 0; i < MAX_REPORT_RETRIES; i++) {
      const h = await this.redis.hgetall(key);
      if (empty(h) || h.nodeId !== report.nodeId) return null;
      const before = toAllocation(h);
      const a = applyReport(before, report);
      if (a === before) return a;
      const r = await this.redis.eval(
        UPDATE_ALLOCATION,
        1,
        key,
        String(before.version),
        report.nodeId,
        a.state,
        a.reason ?? '',
        String(a.since),
        String(a.version),
        String(a.failures),
        a.reason === null ? '0' : '1',
      );
      if (r === 1) return a;
      if (r === 0) return null;
    }
    throw new PeerwayError(
      'internal',
      `allocation ${report.id} kept changing while its report was written; report again`,
    );
  }
  async listAllocations(filter: { deployment?: string; nodeId?: string } = {}) {
    const { deployment, nodeId } = filter;
    const byDeployment = `${P}deploy:${deployment}:allocs`;
    const byNode = `${P}node:${nodeId}:allocs`;
    const ids =
      deployment !== undefined && nodeId !== undefined
        ? await this.redis.sinter(byDeployment, byNode)
        : await this.redis.smembers(
            deployment !== undefined ? byDeployment : nodeId !== undefined ? byNode : `${P}allocs`,
          );
    const all = await this.hashes(
      ids.map((i) => `${P}alloc:${i}`),
      toAllocation,
    );
    return all.sort(byCreation);
  }
  async allocatedOn(nodeId: string) {
    const total: ReplicaResources = { cpuMillis: 0, memoryBytes: 0, gpu: 0 };
    for (const a of await this.listAllocations({ nodeId })) {
      if (a.desired !== 'run') continue;
      total.cpuMillis += a.resources.cpuMillis;
      total.memoryBytes += a.resources.memoryBytes;
      total.gpu += a.resources.gpu;
    }
    return total;
  }

  // deployment events
  async addDeploymentEvent(name: string, e: NewDeploymentEvent) {
    const event: DeploymentEvent = {
      at: e.at,
      kind: e.kind,
      message: boundedText(e.message),
      allocation: e.allocation ?? null,
    };
    const r = await this.redis.eval(
      ADD_EVENT,
      2,
      `${P}deploy:${name}`,
      `${P}deploy:${name}:events`,
      JSON.stringify(event),
      String(MAX_DEPLOYMENT_EVENTS),
    );
    return r === 1;
  }
  async listDeploymentEvents(name: string, limit: number): Promise<DeploymentEvent[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const raw = await this.redis.lrange(`${P}deploy:${name}:events`, -n, -1);
    return raw.map((j) => JSON.parse(j) as DeploymentEvent);
  }

  // deploy grants
  async addDeployGrant(nodeId: string, userId: string) {
    const r = await this.redis.eval(
      ADD_DEPLOY_GRANT,
      4,
      `${P}node:${nodeId}`,
      `${P}user:${userId}`,
      `${P}node:${nodeId}:deployers`,
      `${P}user:${userId}:deploynodes`,
      nodeId,
      userId,
    );
    if (r === 'node') throw new PeerwayError('not_found', `no node ${nodeId}`);
    if (r === 'user') throw new PeerwayError('not_found', `no user ${userId}`);
  }
  async removeDeployGrant(nodeId: string, userId: string) {
    await this.redis
      .multi()
      .srem(`${P}node:${nodeId}:deployers`, userId)
      .srem(`${P}user:${userId}:deploynodes`, nodeId)
      .exec();
  }
  async listDeployGrants(nodeId: string) {
    return (await this.redis.smembers(`${P}node:${nodeId}:deployers`)).sort();
  }
  async deployableNodes(userId: string) {
    return (await this.redis.smembers(`${P}user:${userId}:deploynodes`)).sort();
  }

  // node resources
  async putNodeResources(nodeId: string, report: NodeResources) {
    const json = resourcesToStore(nodeId, report);
    const cap = deployableResources(JSON.parse(json) as NodeResources);
    const r = await this.redis.eval(
      HSET_IF_EXISTS,
      1,
      `${P}node:${nodeId}`,
      'resources',
      json,
      'deployCpuMillis',
      String(cap.cpuMillis),
      'deployMemoryBytes',
      String(cap.memoryBytes),
      'deployGpu',
      String(cap.gpu),
    );
    return r === 1;
  }
}
