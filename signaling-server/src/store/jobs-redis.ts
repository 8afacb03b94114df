/**
 * The jobs part of the Redis store (RedisStore extends this class). Every
 * step that changes a job is one Lua script, so it is atomic across server
 * instances; reads that only pick candidates (the groups a worker may take
 * from) are plain commands, and the script re-checks what it relies on.
 *
 * Keys (prefix `pw:`, schema 4):
 * - job:<id> (hash): id, submitterId, type, input, requirements, image,
 *   key, priority, seq, idempotencyKey, timeoutS, maxAttempts, backoff,
 *   state, attempts (count), base (attempts before the last manual retry),
 *   leaseNodeId, leaseExpiresAt, leaseTokenHash, deadlineAt, output, error,
 *   progress, retryAt, cancelRequested, createdAt, updatedAt (JSON where a
 *   value is structured; absent when none); a<n>:node, a<n>:leasedAt,
 *   a<n>:startedAt, a<n>:endedAt, a<n>:outcome, a<n>:error per attempt;
 *   f:<name> (JSON {bytes, contentType}) per file.
 * - jobq:<submitter>|<key> (zset of queued job IDs): score
 *   (MAX_JOB_PRIORITY - priority) * 2^32 + seq, so the lowest score is the
 *   group's head; at most 2,000,001 * 2^32 < 2^53, exact as a double.
 * - jobgroups:<submitter> (set of keys of its non-empty groups),
 *   jobsubmitters (set of submitters with one).
 * - jobs:delayed (zset by retryAt: `failed` jobs), jobs:leases (by lease
 *   expiry), jobs:deadlines (by attempt deadline), jobs:seq (counter).
 * - jobs:all, jobs:state:<state>, jobs:by:<submitter> (zsets by seq: lists
 *   and counts), jobs:depth (hash q:<priority>, r:<priority>: queued and
 *   retrying per priority), jobidem:<submitter>|<key> → job ID.
 * - node:<id>:jobgrants (set of user IDs, '*' for the public pool).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  JOB_STATES,
  MAX_JOB_PRIORITY,
  type AttemptOutcome,
  type JobBackoff,
  type JobProgress,
  type JobRequirements,
  type JobState,
  type JobType,
} from '@peerway/protocol';
import { requirementKey } from '@peerway/protocol';
import type {
  AttemptEnd,
  JobAttemptRecord,
  JobFileRecord,
  JobListFilter,
  JobRecord,
  JobStore,
  LeaseRequest,
  NewJob,
} from './jobs';
import { eligibleKeys } from './jobs-rules';

const P = 'pw:';
/** Sequence numbers stay below 2^32 so a group's score is exact. */
const MAX_SEQ = 2 ** 32;
/** Due retries promoted per lease call (the rest on the next one). */
const PROMOTE_BATCH = 100;

/** Shared by every script: ARGV[1] is the key prefix. */
const PRELUDE = `
local P = ARGV[1]
local function score(prio, seq)
  return (${MAX_JOB_PRIORITY} - tonumber(prio)) * 4294967296 + tonumber(seq)
end
-- moves job id between states, keeping every index right
local function move(id, to, now)
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'state', 'submitterId', 'key', 'priority', 'seq')
  local from, sub, key, prio, seq = h[1] or '', h[2], h[3], h[4], h[5]
  local q = P .. 'jobq:' .. sub .. '|' .. key
  if from == 'queued' and to ~= 'queued' then
    redis.call('ZREM', q, id)
    redis.call('HINCRBY', P .. 'jobs:depth', 'q:' .. prio, -1)
    if redis.call('EXISTS', q) == 0 then
      redis.call('SREM', P .. 'jobgroups:' .. sub, key)
      if redis.call('EXISTS', P .. 'jobgroups:' .. sub) == 0 then
        redis.call('SREM', P .. 'jobsubmitters', sub)
      end
    end
  elseif from ~= 'queued' and to == 'queued' then
    redis.call('ZADD', q, score(prio, seq), id)
    redis.call('SADD', P .. 'jobgroups:' .. sub, key)
    redis.call('SADD', P .. 'jobsubmitters', sub)
    redis.call('HINCRBY', P .. 'jobs:depth', 'q:' .. prio, 1)
  end
  if from == 'failed' and to ~= 'failed' then
    redis.call('ZREM', P .. 'jobs:delayed', id)
    redis.call('HINCRBY', P .. 'jobs:depth', 'r:' .. prio, -1)
    redis.call('HDEL', jk, 'retryAt')
  elseif from ~= 'failed' and to == 'failed' then
    redis.call('HINCRBY', P .. 'jobs:depth', 'r:' .. prio, 1)
  end
  local wasLive = from == 'leased' or from == 'running'
  if wasLive and to ~= 'leased' and to ~= 'running' then
    redis.call('ZREM', P .. 'jobs:leases', id)
    redis.call('ZREM', P .. 'jobs:deadlines', id)
    redis.call('HDEL', jk, 'leaseNodeId', 'leaseExpiresAt', 'leaseTokenHash', 'deadlineAt')
  end
  if from ~= to then
    if from ~= '' then redis.call('ZREM', P .. 'jobs:state:' .. from, id) end
    redis.call('ZADD', P .. 'jobs:state:' .. to, seq, id)
  end
  redis.call('HSET', jk, 'state', to, 'updatedAt', now)
end
-- true when attempt is the job's current, live one (held by node unless node is '')
local function live(id, attempt, node)
  local h = redis.call('HMGET', P .. 'job:' .. id, 'state', 'attempts', 'leaseNodeId')
  if h[1] ~= 'leased' and h[1] ~= 'running' then return false end
  if h[2] ~= attempt then return false end
  if node ~= '' and h[3] ~= node then return false end
  return true
end
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', P .. 'jobs:delayed', '-inf', now, 'LIMIT', 0, ${PROMOTE_BATCH})
  for _, id in ipairs(due) do move(id, 'queued', now) end
end
`;

/** ARGV: prefix, idempotency key ('' for none), id, submitterId, now, then the hash's field pairs. */
const SUBMIT = `${PRELUDE}
if ARGV[2] ~= '' then
  local old = redis.call('GET', ARGV[2])
  if old then return {0, old} end
end
local seq = redis.call('INCR', P .. 'jobs:seq')
if seq >= ${MAX_SEQ} then return redis.error_reply('job sequence exhausted') end
local id = ARGV[3]
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', P .. 'job:' .. id, 'seq', seq, 'attempts', 0, 'base', 0, unpack(fields))
move(id, 'queued', ARGV[5])
redis.call('ZADD', P .. 'jobs:all', seq, id)
redis.call('ZADD', P .. 'jobs:by:' .. ARGV[4], seq, id)
if ARGV[2] ~= '' then redis.call('SET', ARGV[2], id) end
return {1, id}`;

const PROMOTE = `${PRELUDE}
promote(ARGV[2])
return 1`;

/**
 * ARGV: prefix, now, nodeId, leaseExpiresAt, leaseTokenHash, then the
 * eligible groups as submitter, key pairs. Promotes due retries, takes the
 * lowest-scored head among the groups, starts its next attempt. The
 * job's hash (HGETALL's field, value list), or false.
 */
const LEASE = `${PRELUDE}
local now, node, exp, tok = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
promote(now)
local best, bestScore
for i = 6, #ARGV, 2 do
  local head = redis.call('ZRANGE', P .. 'jobq:' .. ARGV[i] .. '|' .. ARGV[i + 1], 0, 0, 'WITHSCORES')
  if head[1] then
    local s = tonumber(head[2])
    if not best or s < bestScore then best, bestScore = head[1], s end
  end
end
if not best then return false end
local jk = P .. 'job:' .. best
move(best, 'leased', now)
local n = redis.call('HINCRBY', jk, 'attempts', 1)
local deadline = tonumber(now) + tonumber(redis.call('HGET', jk, 'timeoutS')) * 1000
redis.call('HSET', jk, 'leaseNodeId', node, 'leaseExpiresAt', exp, 'leaseTokenHash', tok,
  'deadlineAt', deadline, 'a' .. n .. ':node', node, 'a' .. n .. ':leasedAt', now)
redis.call('HDEL', jk, 'progress')
redis.call('ZADD', P .. 'jobs:leases', exp, best)
redis.call('ZADD', P .. 'jobs:deadlines', deadline, best)
return redis.call('HGETALL', jk)`;

/** ARGV: prefix, id, attempt, nodeId, until. */
const RENEW = `${PRELUDE}
if not live(ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('HSET', P .. 'job:' .. ARGV[2], 'leaseExpiresAt', ARGV[5])
redis.call('ZADD', P .. 'jobs:leases', ARGV[5], ARGV[2])
return 1`;

/** ARGV: prefix, id, attempt, nodeId, now. */
const RUNNING = `${PRELUDE}
local id = ARGV[2]
if not live(id, ARGV[3], ARGV[4]) then return 0 end
if redis.call('HGET', P .. 'job:' .. id, 'state') == 'leased' then
  move(id, 'running', ARGV[5])
  redis.call('HSET', P .. 'job:' .. id, 'a' .. ARGV[3] .. ':startedAt', ARGV[5])
end
return 1`;

/** ARGV: prefix, id, attempt, field, value[, updatedAt]: sets one field of a live attempt's job. */
const SET_LIVE = `${PRELUDE}
if not live(ARGV[2], ARGV[3], '') then return 0 end
redis.call('HSET', P .. 'job:' .. ARGV[2], ARGV[4], ARGV[5])
if ARGV[6] then redis.call('HSET', P .. 'job:' .. ARGV[2], 'updatedAt', ARGV[6]) end
return 1`;

/**
 * ARGV: prefix, id, attempt, now, outcome, hasError, error, retryable,
 * retryAt, hasOutput, output, then file name, JSON pairs. Where the job
 * goes is jobs-rules' retryState, here in Lua so it is one atomic step.
 */
const END = `${PRELUDE}
local id, n, now, outcome = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not live(id, n, '') then return false end
local jk = P .. 'job:' .. id
redis.call('HSET', jk, 'a' .. n .. ':endedAt', now, 'a' .. n .. ':outcome', outcome)
if ARGV[6] == '1' then redis.call('HSET', jk, 'a' .. n .. ':error', ARGV[7]) end
local to
if outcome == 'succeeded' then
  to = 'succeeded'
  for i = 12, #ARGV, 2 do redis.call('HSET', jk, 'f:' .. ARGV[i], ARGV[i + 1]) end
  if ARGV[10] == '1' then redis.call('HSET', jk, 'output', ARGV[11]) else redis.call('HDEL', jk, 'output') end
  redis.call('HDEL', jk, 'error')
else
  local h = redis.call('HMGET', jk, 'cancelRequested', 'attempts', 'base', 'maxAttempts')
  if outcome == 'cancelled' or h[1] == '1' then to = 'cancelled'
  elseif ARGV[8] ~= '1' or tonumber(h[2]) - tonumber(h[3]) >= tonumber(h[4]) then to = 'dead'
  elseif tonumber(ARGV[9]) <= tonumber(now) then to = 'queued'
  else to = 'failed' end
  if ARGV[6] == '1' then redis.call('HSET', jk, 'error', ARGV[7]) else redis.call('HDEL', jk, 'error') end
end
move(id, to, now)
redis.call('HDEL', jk, 'cancelRequested')
if to == 'failed' then
  redis.call('HSET', jk, 'retryAt', ARGV[9])
  redis.call('ZADD', P .. 'jobs:delayed', ARGV[9], id)
end
return to`;

/** ARGV: prefix, id, now. False when the job does not exist. */
const CANCEL = `${PRELUDE}
local id, now = ARGV[2], ARGV[3]
local state = redis.call('HGET', P .. 'job:' .. id, 'state')
if not state then return false end
if state == 'queued' or state == 'failed' then
  move(id, 'cancelled', now)
  redis.call('HSET', P .. 'job:' .. id, 'error', 'cancelled')
elseif (state == 'leased' or state == 'running') and redis.call('HGET', P .. 'job:' .. id, 'cancelRequested') ~= '1' then
  redis.call('HSET', P .. 'job:' .. id, 'cancelRequested', '1', 'updatedAt', now)
end
return 1`;

/** ARGV: prefix, id, now. False when the job does not exist. */
const RETRY = `${PRELUDE}
local id, now = ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
local state = redis.call('HGET', jk, 'state')
if not state then return false end
if state == 'dead' or state == 'cancelled' or state == 'failed' then
  redis.call('HSET', jk, 'base', redis.call('HGET', jk, 'attempts'))
  redis.call('HDEL', jk, 'error', 'cancelRequested')
  move(id, 'queued', now)
end
return 1`;

const SHAS = new Map<string, string>();

const num = (v: string | undefined): number | undefined =>
  v === undefined ? undefined : Number(v);
const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function toJob(h: Record<string, string>): JobRecord {
  const attempts: JobAttemptRecord[] = [];
  for (let n = 1; n <= Number(h.attempts); n++) {
    const a = (f: string) => h[`a${n}:${f}`];
    attempts.push(
      defined({
        attempt: n,
        nodeId: a('node')!,
        leasedAt: Number(a('leasedAt')),
        startedAt: num(a('startedAt')),
        endedAt: num(a('endedAt')),
        outcome: a('outcome') as AttemptOutcome | undefined,
        error: a('error'),
      }),
    );
  }
  const files = Object.keys(h)
    .filter((k) => k.startsWith('f:'))
    .sort()
    .map((k) => ({ name: k.slice(2), ...(JSON.parse(h[k]!) as Omit<JobFileRecord, 'name'>) }));
  return defined({
    id: h.id!,
    submitterId: h.submitterId!,
    type: h.type as JobType,
    input: JSON.parse(h.input!) as unknown,
    requirements: JSON.parse(h.requirements!) as JobRequirements,
    image: h.image,
    key: h.key!,
    priority: Number(h.priority),
    seq: Number(h.seq),
    idempotencyKey: h.idempotencyKey,
    timeoutS: Number(h.timeoutS),
    maxAttempts: Number(h.maxAttempts),
    backoff: JSON.parse(h.backoff!) as JobBackoff,
    state: h.state as JobState,
    attempts,
    leaseNodeId: h.leaseNodeId,
    leaseExpiresAt: num(h.leaseExpiresAt),
    leaseTokenHash: h.leaseTokenHash,
    deadlineAt: num(h.deadlineAt),
    output: h.output === undefined ? undefined : (JSON.parse(h.output) as unknown),
    files,
    error: h.error,
    progress: h.progress === undefined ? undefined : (JSON.parse(h.progress) as JobProgress),
    retryAt: num(h.retryAt),
    cancelRequested: h.cancelRequested === '1' ? true : undefined,
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
  });
}

export class RedisJobStore implements JobStore {
  constructor(readonly redis: Redis) {}

  /** Runs a script by its SHA-1 (the text is sent once per server, again after a SCRIPT FLUSH). */
  private async run(script: string, ...args: (string | number)[]): Promise<unknown> {
    let sha = SHAS.get(script);
    if (!sha) SHAS.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await this.redis.evalsha(sha, 0, P, ...args);
    } catch (e) {
      if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
      return this.redis.eval(script, 0, P, ...args);
    }
  }

  async submitJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const key = requirementKey(job.type, job.requirements, job.image);
    const fields: (string | number)[] = [
      'id',
      job.id,
      'submitterId',
      job.submitterId,
      'type',
      job.type,
      'input',
      JSON.stringify(job.input ?? null),
      'requirements',
      JSON.stringify(job.requirements),
      'key',
      key,
      'priority',
      job.priority,
      'timeoutS',
      job.timeoutS,
      'maxAttempts',
      job.maxAttempts,
      'backoff',
      JSON.stringify(job.backoff),
      'createdAt',
      job.now,
    ];
    if (job.image !== undefined) fields.push('image', job.image);
    if (job.idempotencyKey !== undefined) fields.push('idempotencyKey', job.idempotencyKey);
    const idem =
      job.idempotencyKey === undefined
        ? ''
        : `${P}jobidem:${job.submitterId}|${job.idempotencyKey}`;
    const [created, id] = (await this.run(
      SUBMIT,
      idem,
      job.id,
      job.submitterId,
      job.now,
      ...fields,
    )) as [number, string];
    return { job: (await this.getJob(id))!, created: created === 1 };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const h = await this.redis.hgetall(`${P}job:${id}`);
    return h.id ? toJob(h) : null;
  }

  private async jobs(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(`${P}job:${id}`);
    return ((await pipe.exec()) ?? [])
      .map(([, h]) => h as Record<string, string>)
      .filter((h) => h.id)
      .map(toJob);
  }

  async listJobs(f: JobListFilter): Promise<{ jobs: JobRecord[]; next?: number }> {
    const limit = Math.max(1, Math.min(1000, Math.floor(f.limit)));
    // the narrowest index that holds every match, filtered by the rest
    const src =
      f.submitterId !== undefined
        ? `${P}jobs:by:${f.submitterId}`
        : f.state !== undefined
          ? `${P}jobs:state:${f.state}`
          : `${P}jobs:all`;
    const fits = (j: JobRecord) =>
      (f.submitterId === undefined || j.submitterId === f.submitterId) &&
      (f.state === undefined || j.state === f.state) &&
      (f.type === undefined || j.type === f.type);
    const out: JobRecord[] = [];
    let max = f.before === undefined ? '+inf' : `(${f.before}`;
    const chunk = Math.max(50, limit + 1);
    while (out.length <= limit) {
      const ids = await this.redis.zrevrangebyscore(src, max, '-inf', 'LIMIT', 0, chunk);
      if (ids.length === 0) break;
      const got = await this.jobs(ids);
      for (const j of got) if (fits(j) && out.length <= limit) out.push(j);
      const last = got.at(-1);
      if (ids.length < chunk || !last) break;
      max = `(${last.seq}`;
    }
    const page = out.slice(0, limit);
    return { jobs: page, ...(out.length > limit ? { next: page.at(-1)!.seq } : {}) };
  }

  /** The non-empty groups of these submitters (every one for '*'). */
  private async groups(submitters: readonly string[] | '*'): Promise<[string, string][]> {
    const subs =
      submitters === '*'
        ? await this.redis.smembers(`${P}jobsubmitters`)
        : [...new Set(submitters)];
    if (subs.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const s of subs) pipe.smembers(`${P}jobgroups:${s}`);
    const res = (await pipe.exec()) ?? [];
    return subs.flatMap((s, i) =>
      ((res[i]?.[1] as string[]) ?? []).map((k): [string, string] => [s, k]),
    );
  }

  async leaseJob(req: LeaseRequest): Promise<JobRecord | null> {
    // A retry that came due may be the only job of its group: promote
    // first so its group is a candidate (the lease script promotes again).
    if ((await this.redis.zcount(`${P}jobs:delayed`, '-inf', req.now)) > 0)
      await this.run(PROMOTE, req.now);
    const groups = await this.groups(req.submitters);
    const ok = eligibleKeys(
      groups.map(([, k]) => k),
      req.profile,
    );
    const eligible = groups.filter(([, k]) => ok.has(k)).flat();
    if (eligible.length === 0) return null;
    const flat = (await this.run(
      LEASE,
      req.now,
      req.nodeId,
      req.now + req.leaseMs,
      req.leaseTokenHash,
      ...eligible,
    )) as string[] | null;
    if (!flat) return null;
    const h: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
    return toJob(h);
  }

  async renewLease(id: string, attempt: number, nodeId: string, until: number): Promise<boolean> {
    return (await this.run(RENEW, id, attempt, nodeId, until)) === 1;
  }

  async markRunning(id: string, attempt: number, nodeId: string, now: number): Promise<boolean> {
    return (await this.run(RUNNING, id, attempt, nodeId, now)) === 1;
  }

  async setProgress(id: string, attempt: number, progress: JobProgress): Promise<boolean> {
    const r = await this.run(
      SET_LIVE,
      id,
      attempt,
      'progress',
      JSON.stringify(progress),
      progress.at,
    );
    return r === 1;
  }

  async endAttempt(
    id: string,
    attempt: number,
    end: AttemptEnd,
    now: number,
  ): Promise<JobRecord | null> {
    const error = end.outcome === 'succeeded' ? undefined : end.error;
    const retry = end.outcome === 'succeeded' || end.outcome === 'cancelled' ? undefined : end;
    const files =
      end.outcome === 'succeeded'
        ? (end.files ?? []).flatMap((f) => [
            f.name,
            JSON.stringify({ bytes: f.bytes, contentType: f.contentType }),
          ])
        : [];
    const hasOutput = end.outcome === 'succeeded' && end.output !== undefined;
    const to = await this.run(
      END,
      id,
      attempt,
      now,
      end.outcome,
      error === undefined ? '0' : '1',
      error ?? '',
      retry?.retryable ? '1' : '0',
      retry?.retryAt ?? now,
      hasOutput ? '1' : '0',
      hasOutput ? JSON.stringify(end.output) : '',
      ...files,
    );
    return to ? this.getJob(id) : null;
  }

  async cancelJob(id: string, now: number): Promise<JobRecord | null> {
    return (await this.run(CANCEL, id, now)) ? this.getJob(id) : null;
  }

  async retryJob(id: string, now: number): Promise<JobRecord | null> {
    return (await this.run(RETRY, id, now)) ? this.getJob(id) : null;
  }

  private async due(zset: string, now: number, limit: number) {
    const ids = await this.redis.zrangebyscore(`${P}${zset}`, '-inf', `(${now}`, 'LIMIT', 0, limit);
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(`${P}job:${id}`, 'attempts');
    const res = (await pipe.exec()) ?? [];
    return ids.map((id, i) => ({ id, attempt: Number(res[i]?.[1]) }));
  }

  async expiredLeases(now: number, limit: number): Promise<{ id: string; attempt: number }[]> {
    return this.due('jobs:leases', now, limit);
  }

  async overdueAttempts(now: number, limit: number): Promise<{ id: string; attempt: number }[]> {
    return this.due('jobs:deadlines', now, limit);
  }

  async queueDepth(): Promise<{ priority: number; queued: number; retrying: number }[]> {
    const h = await this.redis.hgetall(`${P}jobs:depth`);
    const by = new Map<number, { priority: number; queued: number; retrying: number }>();
    for (const [field, v] of Object.entries(h)) {
      const n = Number(v);
      if (n <= 0) continue;
      const priority = Number(field.slice(2));
      const row = by.get(priority) ?? { priority, queued: 0, retrying: 0 };
      if (field.startsWith('q:')) row.queued = n;
      else row.retrying = n;
      by.set(priority, row);
    }
    return [...by.values()].sort((a, b) => b.priority - a.priority);
  }

  async countJobs(): Promise<Record<JobState, number>> {
    const pipe = this.redis.pipeline();
    for (const s of JOB_STATES) pipe.zcard(`${P}jobs:state:${s}`);
    const res = (await pipe.exec()) ?? [];
    return Object.fromEntries(JOB_STATES.map((s, i) => [s, Number(res[i]?.[1] ?? 0)])) as Record<
      JobState,
      number
    >;
  }

  async waitingGroups(): Promise<{ submitterId: string; key: string; count: number }[]> {
    const groups = await this.groups('*');
    if (groups.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const [s, k] of groups) pipe.zcard(`${P}jobq:${s}|${k}`);
    const res = (await pipe.exec()) ?? [];
    return groups
      .map(([submitterId, key], i) => ({ submitterId, key, count: Number(res[i]?.[1] ?? 0) }))
      .filter((g) => g.count > 0)
      .sort((a, b) =>
        a.submitterId === b.submitterId
          ? a.key.localeCompare(b.key)
          : a.submitterId.localeCompare(b.submitterId),
      );
  }

  async addJobFile(id: string, attempt: number, file: JobFileRecord): Promise<boolean> {
    const json = JSON.stringify({ bytes: file.bytes, contentType: file.contentType });
    return (await this.run(SET_LIVE, id, attempt, `f:${file.name}`, json)) === 1;
  }

  async addJobGrant(nodeId: string, userId: string): Promise<void> {
    await this.redis.sadd(`${P}node:${nodeId}:jobgrants`, userId);
  }
  async removeJobGrant(nodeId: string, userId: string): Promise<void> {
    await this.redis.srem(`${P}node:${nodeId}:jobgrants`, userId);
  }
  async listJobGrants(nodeId: string): Promise<string[]> {
    return (await this.redis.smembers(`${P}node:${nodeId}:jobgrants`)).sort();
  }
}
