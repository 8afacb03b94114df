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
 * - jobgroups:<submitter> (set of keys of its listed groups: non-empty,
 *   or emptied less than GROUP_IDLE_MS ago), jobsubmitters (set of
 *   submitters with one), jobgroups:emptied (hash <submitter>|<key> →
 *   when it emptied), jobgroups:v (counter, raised whenever a group is
 *   newly listed: the version of the list).
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
import {
  CANCEL,
  END,
  GROUPS,
  LEASE,
  REMOVE_ENDED,
  RENEW,
  RETRY,
  RUNNING,
  SET_LIVE,
  SUBMIT,
} from './jobs-redis-scripts';

const P = 'pw:';
const SHAS = new Map<string, string>();
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

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

/** HGETALL's reply as a script returns it (field, value, …) as an object. */
function fromFlat(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
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
    const [created, flat] = (await this.run(
      SUBMIT,
      idem,
      job.id,
      job.submitterId,
      job.now,
      ...fields,
    )) as [number, string[]];
    return { job: toJob(fromFlat(flat)), created: created === 1 };
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
    // The smaller index that holds every match, filtered by the rest: one
    // user's queued jobs are read from the queued index, not through all
    // of their history (which read every job the user ever ran).
    const candidates = [
      ...(f.submitterId !== undefined ? [`${P}jobs:by:${f.submitterId}`] : []),
      ...(f.state !== undefined ? [`${P}jobs:state:${f.state}`] : []),
    ];
    let src = candidates[0] ?? `${P}jobs:all`;
    if (candidates.length === 2) {
      const pipe = this.redis.pipeline();
      for (const c of candidates) pipe.zcard(c);
      const [a, b] = ((await pipe.exec()) ?? []).map(([, n]) => Number(n));
      if (b! < a!) src = candidates[1]!;
    }
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

  /**
   * The groups of each submitter list as last read, with the version they
   * were read at. Every group that is non-empty now is in the list while
   * the version has not moved (a group that becomes non-empty raises it;
   * one that empties only leaves an empty candidate behind), so a busy
   * worker's lease is one script call, without reading the groups first.
   */
  private readonly groupCache = new Map<string, { version: string; groups: [string, string][] }>();

  /** The non-empty groups of these submitters (every one for '*'), and the version read at. */
  private async groups(
    submitters: readonly string[] | '*',
    now: number,
    cached = true,
  ): Promise<{ version: string; groups: [string, string][] }> {
    const subs = submitters === '*' ? ['*'] : [...new Set(submitters)].sort(cmp);
    const cacheKey = subs.join('\n');
    const hit = cached ? this.groupCache.get(cacheKey) : undefined;
    if (hit) return hit;
    const flat = (await this.run(GROUPS, now, ...subs)) as string[];
    const groups: [string, string][] = [];
    for (let i = 1; i < flat.length; i += 2) groups.push([flat[i]!, flat[i + 1]!]);
    const read = { version: flat[0]!, groups };
    if (this.groupCache.size >= 1000) this.groupCache.clear();
    this.groupCache.set(cacheKey, read);
    return read;
  }

  async leaseJob(req: LeaseRequest): Promise<JobRecord | null> {
    // From the cached groups; if they were stale, from a fresh read; if the
    // groups changed again meanwhile, from another fresh read without the
    // check (a group that fills in between is then found by its own wake,
    // as before the cache). Due retries are promoted by the lease script;
    // one that makes a group non-empty shows as stale.
    for (let tries = 0; ; tries++) {
      const { version, groups } = await this.groups(req.submitters, req.now, tries === 0);
      const ok = eligibleKeys(
        groups.map(([, k]) => k),
        req.profile,
      );
      const eligible = groups.filter(([, k]) => ok.has(k)).flat();
      const got = (await this.run(
        LEASE,
        req.now,
        req.nodeId,
        req.now + req.leaseMs,
        req.leaseTokenHash,
        tries < 2 ? version : '',
        ...eligible,
      )) as string[] | 'stale' | null;
      if (got !== 'stale') return got ? toJob(fromFlat(got)) : null;
    }
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
    const flat = (await this.run(
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
    )) as string[] | null;
    return flat ? toJob(fromFlat(flat)) : null;
  }

  async removeEndedJobs(before: number, limit: number): Promise<string[]> {
    return (await this.run(REMOVE_ENDED, before, limit)) as string[];
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
    // a read only: time 0 drops no idle group (the lease's reads do, on the server's clock)
    const { groups } = await this.groups('*', 0, false);
    if (groups.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const [s, k] of groups) pipe.zcard(`${P}jobq:${s}|${k}`);
    const res = (await pipe.exec()) ?? [];
    return (
      groups
        .map(([submitterId, key], i) => ({ submitterId, key, count: Number(res[i]?.[1] ?? 0) }))
        .filter((g) => g.count > 0)
        // by code unit, as SQLite's ORDER BY sorts text
        .sort((a, b) => cmp(a.submitterId, b.submitterId) || cmp(a.key, b.key))
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
