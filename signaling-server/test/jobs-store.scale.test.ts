/**
 * A lease with 100,000 jobs waiting in 50 groups reads the group heads, not
 * the jobs: SQLite's plan goes through the queue index, and the Redis lease
 * issues one ZRANGE per eligible group and reads one job hash. Prints the
 * lease time's p50/p99 (nothing is asserted about time; the bench measures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { testJob, testProfile } from '../src/store/jobs-contract';
import type { JobStore, LeaseRequest } from '../src/store/jobs';
import { RedisStore } from '../src/store/redis';
import { SqliteStore } from '../src/store/sqlite';
import { LEASE_SQL } from '../src/store/jobs-sqlite';
import { startRedis } from './helpers';

const JOBS = 100_000;
const GROUPS = 50;
const LEASES = 500;
const T0 = 1_800_000_000_000;

const dir = mkdtempSync(join(tmpdir(), 'peerway-jobs-scale-'));
let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** 10 submitters × 5 requirement keys (a model each), priorities 0..2. */
async function fill(store: JobStore): Promise<void> {
  const BATCH = 1000;
  for (let i = 0; i < JOBS; i += BATCH)
    await Promise.all(
      Array.from({ length: BATCH }, (_, b) => {
        const n = i + b;
        return store.submitJob(
          testJob(`j${n}`, `u${n % 10}`, {
            priority: n % 3,
            requirements: { models: [`m${Math.floor(n / 10) % (GROUPS / 10)}`] },
          }),
        );
      }),
    );
}

/** A worker with these models: every group with one of them is eligible. */
const request = (n: number, models: string[]): LeaseRequest => ({
  nodeId: `n${n}`,
  submitters: '*',
  profile: testProfile(['simulation'], { models }),
  now: T0 + 1000,
  leaseMs: 30_000,
  leaseTokenHash: 'h',
});
const EVERY_MODEL = Array.from({ length: GROUPS / 10 }, (_, g) => `m${g}`);

async function timeLeases(store: JobStore, models: string[]) {
  const ms: number[] = [];
  for (let i = 0; i < LEASES; i++) {
    const t = performance.now();
    const j = await store.leaseJob(request(i, models));
    ms.push(performance.now() - t);
    expect(j).not.toBeNull();
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(LEASES / 2)]!, p99: ms[Math.floor(LEASES * 0.99)]! };
}

it('SQLite: a lease reads group heads through the queue index', async () => {
  const store = new SqliteStore(dir);
  await store.migrate();
  // the fill does not need each submit on disk before the next (the leases timed below do sync)
  const db = (store as unknown as { db: Database.Database }).db;
  db.pragma('synchronous = OFF');
  await fill(store);
  db.pragma('synchronous = FULL');
  expect((await store.waitingGroups()).length).toBe(GROUPS);
  const t = await timeLeases(store, EVERY_MODEL);
  const raw = new Database(join(dir, 'peerway.db'), { readonly: true });
  const plan = (sql: string, ...args: unknown[]) =>
    (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[])
      .map((r) => r.detail)
      .join('; ');
  const head = plan(LEASE_SQL.head, 'u1', 'k');
  const due = plan(LEASE_SQL.due, T0);
  const groups = plan(LEASE_SQL.allGroups) + plan(LEASE_SQL.groups, '["u1"]');
  raw.close();
  expect(due).toMatch(/SEARCH jobs USING INDEX jobs_retry \(retry_at<\?\)/);
  expect(groups).not.toMatch(/\bjobs\b/);
  // the partial queue index, in its order (no sort)
  expect(head).toMatch(/SEARCH jobs USING INDEX jobs_queue \(submitter_id=\? AND key=\?\)/);
  expect(head).not.toMatch(/TEMP B-TREE/);
  console.log(
    `SQLite leaseJob at ${JOBS} waiting, ${GROUPS} groups: p50 ${t.p50.toFixed(3)} ms, p99 ${t.p99.toFixed(3)} ms`,
  );
  await store.close();
}, 300_000);

it('Redis: a lease issues one ZRANGE per eligible group and reads one job', async () => {
  const store = new RedisStore(redis.url(1));
  await store.redis.flushdb();
  await store.migrate();
  await fill(store);
  expect((await store.waitingGroups()).length).toBe(GROUPS);
  const t = await timeLeases(store, EVERY_MODEL);
  await store.redis.config('RESETSTAT');
  // a worker every group fits: 50 eligible heads
  expect(await store.leaseJob(request(0, EVERY_MODEL))).not.toBeNull();
  const stats = await store.redis.info('commandstats');
  const calls = (cmd: string) =>
    Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  expect(calls('zrange')).toBe(GROUPS);
  expect(calls('hgetall')).toBe(1);
  expect(calls('zrangebyscore')).toBe(1); // the due retries (none)
  expect(calls('hget') + calls('hmget')).toBeLessThan(10);
  console.log(
    `Redis leaseJob at ${JOBS} waiting, ${GROUPS} groups: p50 ${t.p50.toFixed(3)} ms, p99 ${t.p99.toFixed(3)} ms`,
  );
  await store.close();
}, 300_000);

/** u1 has a long history (HISTORY succeeded jobs) and 3 queued, newest first. */
const HISTORY = 2000;
async function history(store: JobStore): Promise<void> {
  for (let i = 0; i < HISTORY; i += 200) {
    await Promise.all(
      Array.from({ length: 200 }, (_, b) => store.submitJob(testJob(`h${i + b}`, 'u1'))),
    );
    for (let b = 0; b < 200; b++) {
      const j = await store.leaseJob({ ...request(b, []), submitters: ['u1'] });
      await store.endAttempt(j!.id, 1, { outcome: 'succeeded', output: 1 }, T0 + 2000);
    }
  }
  for (const id of ['q0', 'q1', 'q2']) await store.submitJob(testJob(id, 'u1'));
}

it("SQLite: one user's queued jobs are listed through an index of both, not through their history", async () => {
  const store = new SqliteStore(join(dir, 'history'));
  await store.migrate();
  await history(store);
  const page = await store.listJobs({ submitterId: 'u1', state: 'queued', limit: 10 });
  expect(page.jobs.map((j) => j.id)).toEqual(['q2', 'q1', 'q0']);
  const raw = new Database(join(dir, 'history', 'peerway.db'), { readonly: true });
  const plan = (
    raw
      .prepare(
        'EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE submitter_id = ? AND state = ? ORDER BY seq DESC LIMIT ?',
      )
      .all('u1', 'queued', 11) as { detail: string }[]
  )
    .map((r) => r.detail)
    .join('; ');
  raw.close();
  expect(plan).toMatch(/USING INDEX jobs_submitter_state \(submitter_id=\? AND state=\?\)/);
  await store.close();
}, 120_000);

it("Redis: one user's queued jobs are read from the queued index, not through their history", async () => {
  const store = new RedisStore(redis.url(2));
  await store.redis.flushdb();
  await store.migrate();
  await history(store);
  await store.redis.config('RESETSTAT');
  const page = await store.listJobs({ submitterId: 'u1', state: 'queued', limit: 10 });
  expect(page.jobs.map((j) => j.id)).toEqual(['q2', 'q1', 'q0']);
  const stats = await store.redis.info('commandstats');
  // the 3 queued jobs' hashes (it read every one of the user's 2,003 before)
  expect(Number(/cmdstat_hgetall:calls=(\d+)/.exec(stats)?.[1] ?? 0)).toBe(3);
  await store.close();
}, 120_000);
