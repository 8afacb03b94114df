/**
 * The jobs part of the SQLite store (SqliteStore extends this class). Jobs
 * keep their JSON (input, requirements, backoff, output, progress) in text
 * columns; attempts and files are rows of their own. Waiting jobs are found
 * through `job_groups` (the non-empty groups, by submitter and requirement
 * key, with their counts) and the partial index `jobs_queue`, so a lease
 * reads one group head per eligible group and never the waiting jobs.
 * Every step that reads then writes runs in one IMMEDIATE transaction, so
 * two processes on one file never lease one job twice.
 */
import type Database from 'better-sqlite3';
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
import { eligibleKeys, retryState } from './jobs-rules';

/** The jobs tables, appended to the SQLite store's migrations. */
export const JOBS_MIGRATION = `
  CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, submitter_id TEXT NOT NULL,
    type TEXT NOT NULL, input TEXT NOT NULL, requirements TEXT NOT NULL, image TEXT, key TEXT NOT NULL,
    priority INTEGER NOT NULL, idempotency_key TEXT, timeout_s INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL, backoff TEXT NOT NULL, state TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0, attempt_base INTEGER NOT NULL DEFAULT 0,
    lease_node_id TEXT, lease_expires_at INTEGER, lease_token_hash TEXT, deadline_at INTEGER,
    output TEXT, error TEXT, progress TEXT, retry_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE UNIQUE INDEX jobs_idempotency ON jobs(submitter_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
  CREATE INDEX jobs_queue ON jobs(submitter_id, key, priority DESC, seq) WHERE state = 'queued';
  CREATE INDEX jobs_retry ON jobs(retry_at) WHERE state = 'failed';
  CREATE INDEX jobs_leases ON jobs(lease_expires_at) WHERE state IN ('leased', 'running');
  CREATE INDEX jobs_deadlines ON jobs(deadline_at) WHERE state IN ('leased', 'running');
  CREATE INDEX jobs_state ON jobs(state, seq);
  CREATE INDEX jobs_submitter ON jobs(submitter_id, seq);
  CREATE TABLE job_groups (
    submitter_id TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (submitter_id, key));
  CREATE TABLE job_attempts (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, attempt INTEGER NOT NULL,
    node_id TEXT NOT NULL, leased_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,
    outcome TEXT, error TEXT, PRIMARY KEY (job_id, attempt));
  CREATE TABLE job_files (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, name TEXT NOT NULL,
    bytes INTEGER NOT NULL, content_type TEXT NOT NULL, PRIMARY KEY (job_id, name));
  CREATE TABLE job_grants (node_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (node_id, user_id));`;

/** The statements a lease runs (exported so a test can check their query plans). */
export const LEASE_SQL = {
  due: `SELECT * FROM jobs INDEXED BY jobs_retry WHERE state = 'failed' AND retry_at <= ? LIMIT 1000`,
  allGroups: 'SELECT submitter_id, key FROM job_groups',
  groups:
    'SELECT submitter_id, key FROM job_groups WHERE submitter_id IN (SELECT value FROM json_each(?))',
  head: `SELECT * FROM jobs INDEXED BY jobs_queue
    WHERE state = 'queued' AND submitter_id = ? AND key = ? ORDER BY priority DESC, seq LIMIT 1`,
};

interface JobRow {
  seq: number;
  id: string;
  submitter_id: string;
  type: string;
  input: string;
  requirements: string;
  image: string | null;
  key: string;
  priority: number;
  idempotency_key: string | null;
  timeout_s: number;
  max_attempts: number;
  backoff: string;
  state: string;
  attempt_count: number;
  attempt_base: number;
  lease_node_id: string | null;
  lease_expires_at: number | null;
  lease_token_hash: string | null;
  deadline_at: number | null;
  output: string | null;
  error: string | null;
  progress: string | null;
  retry_at: number | null;
  cancel_requested: number;
  created_at: number;
  updated_at: number;
}
interface AttemptRow {
  attempt: number;
  node_id: string;
  leased_at: number;
  started_at: number | null;
  ended_at: number | null;
  outcome: string | null;
  error: string | null;
}

const opt = <K extends string, V>(k: K, v: V | null): { [P in K]?: V } =>
  (v === null ? {} : { [k]: v }) as { [P in K]?: V };

function toAttempt(r: AttemptRow): JobAttemptRecord {
  return {
    attempt: r.attempt,
    nodeId: r.node_id,
    leasedAt: r.leased_at,
    ...opt('startedAt', r.started_at),
    ...opt('endedAt', r.ended_at),
    ...opt('outcome', r.outcome as AttemptOutcome | null),
    ...opt('error', r.error),
  };
}

const LIVE = ['leased', 'running'];

export class SqliteJobStore implements JobStore {
  constructor(protected readonly db: Database.Database) {}

  private row(id: string): JobRow | undefined {
    return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  }

  private record(r: JobRow): JobRecord {
    const attempts = (
      this.db
        .prepare('SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt')
        .all(r.id) as AttemptRow[]
    ).map(toAttempt);
    const files = (
      this.db
        .prepare(
          'SELECT name, bytes, content_type AS contentType FROM job_files WHERE job_id = ? ORDER BY name',
        )
        .all(r.id) as JobFileRecord[]
    ).map((f) => ({ ...f }));
    return {
      id: r.id,
      submitterId: r.submitter_id,
      type: r.type as JobType,
      input: JSON.parse(r.input) as unknown,
      requirements: JSON.parse(r.requirements) as JobRequirements,
      ...opt('image', r.image),
      key: r.key,
      priority: r.priority,
      seq: r.seq,
      ...opt('idempotencyKey', r.idempotency_key),
      timeoutS: r.timeout_s,
      maxAttempts: r.max_attempts,
      backoff: JSON.parse(r.backoff) as JobBackoff,
      state: r.state as JobState,
      attempts,
      ...(LIVE.includes(r.state)
        ? {
            ...opt('leaseNodeId', r.lease_node_id),
            ...opt('leaseExpiresAt', r.lease_expires_at),
            ...opt('leaseTokenHash', r.lease_token_hash),
            ...opt('deadlineAt', r.deadline_at),
          }
        : {}),
      ...(r.output !== null ? { output: JSON.parse(r.output) as unknown } : {}),
      files,
      ...opt('error', r.error),
      ...(r.progress !== null ? { progress: JSON.parse(r.progress) as JobProgress } : {}),
      ...opt('retryAt', r.state === 'failed' ? r.retry_at : null),
      ...(r.cancel_requested === 1 ? { cancelRequested: true } : {}),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  /** Moves a job between states, keeping the group counts of queued jobs right. */
  private move(r: JobRow, to: JobState, now: number, set: Record<string, unknown> = {}): void {
    if (r.state === 'queued' && to !== 'queued') {
      this.db
        .prepare('UPDATE job_groups SET count = count - 1 WHERE submitter_id = ? AND key = ?')
        .run(r.submitter_id, r.key);
      this.db
        .prepare('DELETE FROM job_groups WHERE submitter_id = ? AND key = ? AND count <= 0')
        .run(r.submitter_id, r.key);
    } else if (r.state !== 'queued' && to === 'queued') {
      this.enqueued(r.submitter_id, r.key);
    }
    const cols = { ...set, state: to, updated_at: now };
    const names = Object.keys(cols);
    this.db
      .prepare(`UPDATE jobs SET ${names.map((n) => `${n} = ?`).join(', ')} WHERE id = ?`)
      .run(...names.map((n) => cols[n as keyof typeof cols] as never), r.id);
  }

  private enqueued(submitterId: string, key: string): void {
    this.db
      .prepare(
        `INSERT INTO job_groups VALUES (?, ?, 1)
         ON CONFLICT (submitter_id, key) DO UPDATE SET count = count + 1`,
      )
      .run(submitterId, key);
  }

  /** `failed` jobs whose retryAt has come go back to their place in the queue. */
  private promoteDue(now: number): void {
    const due = this.db.prepare(LEASE_SQL.due).all(now) as JobRow[];
    for (const r of due) this.move(r, 'queued', now, { retry_at: null });
  }

  async submitJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const key = requirementKey(job.type, job.requirements, job.image);
    return this.db
      .transaction(() => {
        if (job.idempotencyKey !== undefined) {
          const old = this.db
            .prepare('SELECT * FROM jobs WHERE submitter_id = ? AND idempotency_key = ?')
            .get(job.submitterId, job.idempotencyKey) as JobRow | undefined;
          if (old) return { job: this.record(old), created: false };
        }
        this.db
          .prepare(
            `INSERT INTO jobs (id, submitter_id, type, input, requirements, image, key, priority,
               idempotency_key, timeout_s, max_attempts, backoff, state, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
          )
          .run(
            job.id,
            job.submitterId,
            job.type,
            JSON.stringify(job.input ?? null),
            JSON.stringify(job.requirements),
            job.image ?? null,
            key,
            job.priority,
            job.idempotencyKey ?? null,
            job.timeoutS,
            job.maxAttempts,
            JSON.stringify(job.backoff),
            job.now,
            job.now,
          );
        this.enqueued(job.submitterId, key);
        return { job: this.record(this.row(job.id)!), created: true };
      })
      .immediate();
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = this.row(id);
    return r ? this.record(r) : null;
  }

  async listJobs(f: JobListFilter): Promise<{ jobs: JobRecord[]; next?: number }> {
    const conds: [string, unknown][] = [
      ['submitter_id = ?', f.submitterId],
      ['state = ?', f.state],
      ['type = ?', f.type],
      ['seq < ?', f.before],
    ];
    const used = conds.filter(([, v]) => v !== undefined);
    const where = used.map(([c]) => c);
    const args = used.map(([, v]) => v);
    const limit = Math.max(1, Math.min(1000, Math.floor(f.limit)));
    const rows = this.db
      .prepare(
        `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(...(args as never[]), limit + 1) as JobRow[];
    const page = rows.slice(0, limit);
    return {
      jobs: page.map((r) => this.record(r)),
      ...(rows.length > limit ? { next: page.at(-1)!.seq } : {}),
    };
  }

  async leaseJob(req: LeaseRequest): Promise<JobRecord | null> {
    return this.db
      .transaction((): JobRecord | null => {
        this.promoteDue(req.now);
        const groups = (
          req.submitters === '*'
            ? this.db.prepare(LEASE_SQL.allGroups).all()
            : this.db.prepare(LEASE_SQL.groups).all(JSON.stringify(req.submitters))
        ) as { submitter_id: string; key: string }[];
        const ok = eligibleKeys(
          groups.map((g) => g.key),
          req.profile,
        );
        const head = this.db.prepare(LEASE_SQL.head);
        let best: JobRow | undefined;
        for (const g of groups) {
          if (!ok.has(g.key)) continue;
          const r = head.get(g.submitter_id, g.key) as JobRow | undefined;
          if (
            r &&
            (!best ||
              r.priority > best.priority ||
              (r.priority === best.priority && r.seq < best.seq))
          )
            best = r;
        }
        if (!best) return null;
        const attempt = best.attempt_count + 1;
        this.move(best, 'leased', req.now, {
          attempt_count: attempt,
          lease_node_id: req.nodeId,
          lease_expires_at: req.now + req.leaseMs,
          lease_token_hash: req.leaseTokenHash,
          deadline_at: req.now + best.timeout_s * 1000,
          progress: null,
        });
        this.db
          .prepare(
            'INSERT INTO job_attempts (job_id, attempt, node_id, leased_at) VALUES (?, ?, ?, ?)',
          )
          .run(best.id, attempt, req.nodeId, req.now);
        return this.record(this.row(best.id)!);
      })
      .immediate();
  }

  /** The job's row if `attempt` is its current, live attempt (held by `nodeId` when given). */
  private live(id: string, attempt: number, nodeId?: string): JobRow | undefined {
    const r = this.row(id);
    if (!r || !LIVE.includes(r.state) || r.attempt_count !== attempt) return undefined;
    if (nodeId !== undefined && r.lease_node_id !== nodeId) return undefined;
    return r;
  }

  async renewLease(id: string, attempt: number, nodeId: string, until: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const r = this.live(id, attempt, nodeId);
        if (!r) return false;
        this.db.prepare('UPDATE jobs SET lease_expires_at = ? WHERE id = ?').run(until, id);
        return true;
      })
      .immediate();
  }

  async markRunning(id: string, attempt: number, nodeId: string, now: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const r = this.live(id, attempt, nodeId);
        if (!r) return false;
        if (r.state === 'leased') {
          this.move(r, 'running', now);
          this.db
            .prepare('UPDATE job_attempts SET started_at = ? WHERE job_id = ? AND attempt = ?')
            .run(now, id, attempt);
        }
        return true;
      })
      .immediate();
  }

  async setProgress(id: string, attempt: number, progress: JobProgress): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (!this.live(id, attempt)) return false;
        this.db
          .prepare('UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?')
          .run(JSON.stringify(progress), progress.at, id);
        return true;
      })
      .immediate();
  }

  async endAttempt(
    id: string,
    attempt: number,
    end: AttemptEnd,
    now: number,
  ): Promise<JobRecord | null> {
    return this.db
      .transaction((): JobRecord | null => {
        const r = this.live(id, attempt);
        if (!r) return null;
        const error = end.outcome === 'succeeded' ? null : (end.error ?? null);
        this.db
          .prepare(
            'UPDATE job_attempts SET ended_at = ?, outcome = ?, error = ? WHERE job_id = ? AND attempt = ?',
          )
          .run(now, end.outcome, error, id, attempt);
        const clear = {
          lease_node_id: null,
          lease_expires_at: null,
          lease_token_hash: null,
          deadline_at: null,
        };
        if (end.outcome === 'succeeded') {
          for (const f of end.files ?? []) this.putFile(id, f);
          this.move(r, 'succeeded', now, {
            ...clear,
            output: end.output === undefined ? null : JSON.stringify(end.output),
            error: null,
            cancel_requested: 0,
          });
        } else {
          const to = retryState(
            end,
            r.cancel_requested === 1,
            r.attempt_count - r.attempt_base,
            r.max_attempts,
            now,
          );
          this.move(r, to, now, {
            ...clear,
            error,
            retry_at: to === 'failed' && end.outcome !== 'cancelled' ? end.retryAt : null,
            cancel_requested: 0,
          });
        }
        return this.record(this.row(id)!);
      })
      .immediate();
  }

  async cancelJob(id: string, now: number): Promise<JobRecord | null> {
    return this.db
      .transaction((): JobRecord | null => {
        const r = this.row(id);
        if (!r) return null;
        if (r.state === 'queued' || r.state === 'failed')
          this.move(r, 'cancelled', now, { retry_at: null, error: 'cancelled' });
        else if (LIVE.includes(r.state) && r.cancel_requested === 0)
          this.db
            .prepare('UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?')
            .run(now, id);
        return this.record(this.row(id)!);
      })
      .immediate();
  }

  async retryJob(id: string, now: number): Promise<JobRecord | null> {
    return this.db
      .transaction((): JobRecord | null => {
        const r = this.row(id);
        if (!r) return null;
        if (['dead', 'cancelled', 'failed'].includes(r.state))
          this.move(r, 'queued', now, {
            attempt_base: r.attempt_count,
            retry_at: null,
            error: null,
            cancel_requested: 0,
          });
        return this.record(this.row(id)!);
      })
      .immediate();
  }

  async expiredLeases(now: number, limit: number): Promise<{ id: string; attempt: number }[]> {
    return this.db
      .prepare(
        `SELECT id, attempt_count AS attempt FROM jobs INDEXED BY jobs_leases
         WHERE state IN ('leased', 'running') AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?`,
      )
      .all(now, limit) as { id: string; attempt: number }[];
  }

  async removeEndedJobs(before: number, limit: number): Promise<string[]> {
    return this.db
      .transaction(() => {
        const ids = (
          this.db
            .prepare(
              `SELECT id FROM jobs INDEXED BY jobs_state
               WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ? LIMIT ?`,
            )
            .all(before, limit) as { id: string }[]
        ).map((r) => r.id);
        const del = this.db.prepare('DELETE FROM jobs WHERE id = ?');
        for (const id of ids) del.run(id); // attempts and files go with it (ON DELETE CASCADE)
        return ids;
      })
      .immediate();
  }

  async overdueAttempts(now: number, limit: number): Promise<{ id: string; attempt: number }[]> {
    return this.db
      .prepare(
        `SELECT id, attempt_count AS attempt FROM jobs INDEXED BY jobs_deadlines
         WHERE state IN ('leased', 'running') AND deadline_at < ? ORDER BY deadline_at LIMIT ?`,
      )
      .all(now, limit) as { id: string; attempt: number }[];
  }

  async queueDepth(): Promise<{ priority: number; queued: number; retrying: number }[]> {
    return this.db
      .prepare(
        `SELECT priority, SUM(state = 'queued') AS queued, SUM(state = 'failed') AS retrying
         FROM jobs WHERE state IN ('queued', 'failed') GROUP BY priority ORDER BY priority DESC`,
      )
      .all() as { priority: number; queued: number; retrying: number }[];
  }

  async countJobs(): Promise<Record<JobState, number>> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as {
      state: JobState;
      n: number;
    }[];
    for (const r of rows) counts[r.state] = r.n;
    return counts;
  }

  async waitingGroups(): Promise<{ submitterId: string; key: string; count: number }[]> {
    return this.db
      .prepare(
        'SELECT submitter_id AS submitterId, key, count FROM job_groups WHERE count > 0 ORDER BY submitter_id, key',
      )
      .all() as { submitterId: string; key: string; count: number }[];
  }

  private putFile(id: string, f: JobFileRecord): void {
    this.db
      .prepare(
        `INSERT INTO job_files VALUES (?, ?, ?, ?)
         ON CONFLICT (job_id, name) DO UPDATE SET bytes = excluded.bytes, content_type = excluded.content_type`,
      )
      .run(id, f.name, f.bytes, f.contentType);
  }

  async addJobFile(id: string, attempt: number, file: JobFileRecord): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (!this.live(id, attempt)) return false;
        this.putFile(id, file);
        return true;
      })
      .immediate();
  }

  async addJobGrant(nodeId: string, userId: string): Promise<void> {
    this.db.prepare('INSERT OR IGNORE INTO job_grants VALUES (?, ?)').run(nodeId, userId);
  }
  async removeJobGrant(nodeId: string, userId: string): Promise<void> {
    this.db.prepare('DELETE FROM job_grants WHERE node_id = ? AND user_id = ?').run(nodeId, userId);
  }
  async listJobGrants(nodeId: string): Promise<string[]> {
    return (
      this.db
        .prepare('SELECT user_id FROM job_grants WHERE node_id = ? ORDER BY user_id')
        .all(nodeId) as { user_id: string }[]
    ).map((r) => r.user_id);
  }
}
