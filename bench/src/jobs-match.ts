/**
 * Matching latency with 100,000 jobs waiting (issue 20's target: p99 under
 * 10 ms): one `leaseJob` — pick the best job this worker may take among
 * the groups it is eligible for, and lease it, in one atomic step — on
 * each store, timed from the server's side. Beside it in the same run: the
 * same lease with 1,000 jobs waiting (what the queue's size adds), and the
 * store's floor (Redis: a PING round trip; SQLite: reading one job by id).
 *
 * 10 submitters × 5 requirement groups (a model each), priorities 0..2;
 * the worker has every model, so all 50 groups are candidates (the most
 * work a lease does). Usage: tsx src/jobs-match.ts; BENCH_MATCH_LEASES
 * (default 1000). Bounded: 100,000 jobs, a few minutes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore, SqliteStore } from '@peerway/signaling-server';
import { JOB_DEFAULTS } from '@peerway/protocol';
import { loadLine, percentile, startLoadSample, startRedis } from './machine';
import { ROOT } from './stack';

const LEASES = Number(process.env.BENCH_MATCH_LEASES ?? 1000);
const SIZES = [1000, 100_000];
const GROUPS = 50;
const T0 = Date.now();
type Store = SqliteStore | RedisStore;
interface Pragma {
  pragma(p: string): unknown;
}

async function fill(store: Store, n: number, prefix: string): Promise<void> {
  const BATCH = 1000;
  for (let i = 0; i < n; i += BATCH)
    await Promise.all(
      Array.from({ length: Math.min(BATCH, n - i) }, (_, b) => {
        const k = i + b;
        return store.submitJob({
          id: `${prefix}${k}`,
          submitterId: `u${k % 10}`,
          type: 'simulation',
          input: {},
          requirements: { models: [`m${Math.floor(k / 10) % (GROUPS / 10)}`], labels: {} },
          priority: k % 3,
          timeoutS: 60,
          maxAttempts: 1,
          backoff: JOB_DEFAULTS.backoff,
          now: T0,
        });
      }),
    );
}

const MODELS = Array.from({ length: GROUPS / 10 }, (_, g) => `m${g}`);
const profile = {
  connectors: [{ type: 'simulation' as const, services: [], models: MODELS, images: [] }],
  resources: null,
};

async function timeLeases(store: Store): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < LEASES; i++) {
    const t = performance.now();
    const j = await store.leaseJob({
      nodeId: `n${i % 100}`,
      submitters: '*',
      profile,
      now: T0 + 1000,
      leaseMs: 30_000,
      leaseTokenHash: 'h',
    });
    ms.push(performance.now() - t);
    if (!j) throw new Error('a lease found no job');
  }
  return { p50: +percentile(ms, 50).toFixed(3), p99: +percentile(ms, 99).toFixed(3) };
}

async function timeFloor(go: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < LEASES; i++) {
    const t = performance.now();
    await go();
    ms.push(performance.now() - t);
  }
  return { p50: +percentile(ms, 50).toFixed(3), p99: +percentile(ms, 99).toFixed(3) };
}

interface Row {
  store: 'SQLite' | 'Redis';
  floor: { p50: number; p99: number };
  waiting: Record<string, { p50: number; p99: number }>;
}

const dir = mkdtempSync(join(tmpdir(), 'pw-jobs-match-'));
const sample = startLoadSample();
const rows: Row[] = [];
const redis = await startRedis(dir);
try {
  for (const kind of ['SQLite', 'Redis'] as const) {
    const row: Row = { store: kind, floor: { p50: NaN, p99: NaN }, waiting: {} };
    for (const size of SIZES) {
      const store: Store =
        kind === 'SQLite'
          ? new SqliteStore(join(dir, `sqlite-${size}`))
          : new RedisStore(`redis://127.0.0.1:${redis.port}/${size === SIZES[0] ? 1 : 2}`);
      await store.migrate();
      // The fill need not put each submit on disk before the next (the
      // timed leases below do, as the server's do).
      const db = store instanceof SqliteStore ? (store as unknown as { db: Pragma }).db : null;
      db?.pragma('synchronous = OFF');
      await fill(store, size, `j${size}-`);
      db?.pragma('synchronous = FULL');
      if (size === SIZES[0])
        row.floor = await timeFloor(() =>
          store instanceof RedisStore ? store.redis.ping() : store.getJob('none'),
        );
      row.waiting[size] = await timeLeases(store);
      await store.close();
      console.error(
        `${kind}: ${size} waiting: p50 ${row.waiting[size]!.p50} ms, p99 ${row.waiting[size]!.p99} ms`,
      );
    }
    rows.push(row);
  }
} finally {
  await redis.child.stop();
  rmSync(dir, { recursive: true, force: true });
}
const load = sample.end();

const date = new Date().toISOString();
console.log(
  `\n## Matching: one lease among ${GROUPS} eligible groups, ${LEASES} leases per cell (${date.slice(0, 16)}Z)\n`,
);
console.log(
  `| store | floor p50 / p99 ms | ${SIZES.map((s) => `${s.toLocaleString('en')} waiting, p50 / p99 ms`).join(' | ')} | p99 at ${SIZES.at(-1)!.toLocaleString('en')} ÷ at ${SIZES[0]!.toLocaleString('en')} |`,
);
console.log(`|---|---|${SIZES.map(() => '---|').join('')}---|`);
for (const r of rows)
  console.log(
    `| ${r.store} | ${r.floor.p50} / ${r.floor.p99} | ${SIZES.map((s) => `${r.waiting[s]!.p50} / ${r.waiting[s]!.p99}`).join(' | ')} | ${(r.waiting[SIZES.at(-1)!]!.p99 / r.waiting[SIZES[0]!]!.p99).toFixed(2)} |`,
  );
console.log(`\nFloor: Redis, a PING round trip; SQLite, reading one job by id. ${loadLine(load)}`);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, `bench/results/jobs-match-${date.slice(0, 10)}.json`);
writeFileSync(out, JSON.stringify({ date, leases: LEASES, groups: GROUPS, load, rows }, null, 2));
console.log(`JSON: ${out}`);
process.exit(0);
