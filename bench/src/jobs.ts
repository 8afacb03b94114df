/**
 * Jobs, side by side on one redis-server in one run:
 *
 * 1. End to end (submit → a worker takes it → the submitter has the result)
 *    with 1, 10 and 100 workers: Peerway's broker (the server process with
 *    its store on the redis-server, workers speaking the agent protocol over
 *    real WebSockets, the submitter on the HTTP API waiting on each job's
 *    Server-Sent Events, as `peerway jobs submit --wait` does) against BullMQ
 *    (Queue.add, Workers with a no-op processor, job.waitUntilFinished over
 *    QueueEvents), both doing the same no-op jobs. Peerway's jobs are
 *    matched on capabilities (the simulation connector); BullMQ's only by
 *    queue name.
 * 2. 1,000 workers connected to one instance: the server's RSS and a batch
 *    run through them.
 * 3. Where the server's CPU goes per job, phase by phase (splitRun), beside
 *    a bare Node HTTP server answering the same POST in the same run
 *    (BENCH_JOBS_SPLIT=0 leaves it out).
 *
 * Matching latency at 100,000 waiting jobs is bench/src/jobs-match.ts (bench:jobs-match).
 * Usage: tsx src/jobs.ts [--workers 1,10,100]; BENCH_JOBS (default 2000),
 * BENCH_IN_FLIGHT (submitters' jobs in flight, default 30), BENCH_RUNS
 * (default 3), BENCH_SERVER_PROF=<dir> (the server's CPU profile). Everything on loopback, bounded in count and time.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { encodeMessage, type ServerToAgent } from '@peerway/protocol';
import { generateIdentity, signChallenge } from '@peerway/protocol/node';
import {
  Child,
  loadLine,
  percentile,
  procCpuS,
  procUserSys,
  startLoadSample,
  startRedis,
} from './machine';
import { ROOT, stat } from './stack';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const WORKERS = (args.get('workers') ?? '1,10,100').split(',').map(Number);
const JOBS = Number(process.env.BENCH_JOBS ?? 2000);
// the server allows 32 event streams per user at once (MAX_JOB_STREAMS_PER_USER)
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 30);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MANY_WORKERS = Number(process.env.BENCH_MANY_WORKERS ?? 1000);
/** Hard stop for the whole benchmark. */
const DEADLINE = Date.now() + 30 * 60_000;
const WAIT_MS = 120_000;

function procRss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** Runs `make(i)` for i < n with at most `width` at once. */
async function pool(n: number, width: number, make: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await make(next++);
    }),
  );
}

function deadline(): void {
  if (Date.now() > DEADLINE) throw new Error('jobs bench: past its 30 min deadline');
}

// ---------------------------------------------------------------------------
// processes

interface Server {
  child: Child;
  url: string;
  ws: string;
  token: string;
}

async function startServer(redisUrl: string): Promise<Server> {
  const proc = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_SERVER_PROF
        ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SERVER_PROF]
        : []),
      '--import',
      'tsx',
      '--conditions=peerway-source',
      join(ROOT, 'bench/src/jobs-server.ts'),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PEERWAY_REDIS_URL: redisUrl },
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (c) => reject(new Error(`jobs server exited ${c}`)));
  });
  const info = JSON.parse(line) as { url: string; token: string };
  return {
    child: new Child(proc),
    url: info.url,
    ws: info.url.replace('http', 'ws'),
    token: info.token,
  };
}

// ---------------------------------------------------------------------------
// Peerway: simulated workers over the agent protocol, the submitter on the API

const RESOURCES = {
  capacity: {
    cpuCores: 2,
    memoryBytes: 4 * 1024 ** 3,
    diskFreeBytes: 10 * 1024 ** 3,
    gpus: [],
    os: 'linux',
    arch: 'x64',
    runtime: null,
  },
  offer: { cpuCores: null, memoryBytes: null },
  labels: {},
  deployments: false,
};

/**
 * One worker node: challenge → signed auth (claimed by the token's user) →
 * resources, worker (the simulation connector, concurrency 1), a free slot;
 * every lease is answered with its result at once (a no-op job) and the
 * slot offered again.
 */
function connectWorker(server: Server): Promise<WebSocket> {
  const id = generateIdentity();
  const ws = new WebSocket(`${server.ws}/ws/agent`);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('worker handshake timed out')), 60_000);
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as ServerToAgent;
      if (m.type === 'challenge') {
        const timestamp = Date.now();
        ws.send(
          encodeMessage({
            type: 'auth',
            nodeId: id.nodeId,
            timestamp,
            signature: signChallenge(id, m.serverUrl, m.nonce, timestamp),
            name: 'sim',
            version: 'bench',
            token: server.token,
            services: [],
          }),
        );
      } else if (m.type === 'welcome') {
        clearTimeout(t);
        ws.send(encodeMessage({ type: 'resources', resources: RESOURCES }));
        ws.send(
          encodeMessage({
            type: 'worker',
            capabilities: {
              concurrency: 1,
              connectors: [{ type: 'simulation', services: [], models: [], images: [] }],
            },
          }),
        );
        ws.send(encodeMessage({ type: 'job-pull', free: 1 }));
        resolve(ws);
      } else if (m.type === 'job-lease') {
        ws.send(
          encodeMessage({
            type: 'job-result',
            id: m.id,
            attempt: m.attempt,
            output: { ok: true },
            outputUploaded: false,
          }),
        );
        ws.send(encodeMessage({ type: 'job-pull', free: 1 }));
      }
    });
  });
}

const FINAL = ['succeeded', 'dead', 'cancelled'];

/** Calls `onData` with each event's parsed data until the stream ends or `onData` returns true. */
async function readSse(
  res: Response,
  onData: (d: Record<string, unknown>) => boolean,
): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (data && onData(JSON.parse(data) as Record<string, unknown>)) return;
      }
    }
  } finally {
    void reader.cancel().catch(() => {});
  }
}

/** Reads a job's own SSE stream until it is final (as `peerway jobs submit --wait` does); resolves with its last state. */
async function waitForJob(server: Server, id: string): Promise<string> {
  const res = await fetch(`${server.url}/api/jobs/${id}/events`, {
    headers: { authorization: `Bearer ${server.token}`, accept: 'text/event-stream' },
    signal: AbortSignal.timeout(WAIT_MS),
  });
  if (!res.ok || !res.body) throw new Error(`events of ${id}: HTTP ${res.status}`);
  let state = '';
  await readSse(res, (e) => {
    if (e.type === 'state' && typeof e.state === 'string') state = e.state;
    return FINAL.includes(state);
  });
  return state;
}

/**
 * One stream of all the submitter's jobs (`GET /api/jobs/events`), as
 * BullMQ's QueueEvents is one stream for its waiters: `wait(id)` resolves
 * with the job's final state (also when it came before the submit's answer).
 */
class AllJobEvents {
  private readonly final = new Map<string, string>();
  private readonly waiting = new Map<string, (state: string) => void>();
  private readonly abort = new AbortController();
  readonly ready: Promise<void>;

  constructor(server: Server) {
    this.ready = new Promise((ready, fail) => {
      void fetch(`${server.url}/api/jobs/events`, {
        headers: { authorization: `Bearer ${server.token}`, accept: 'text/event-stream' },
        signal: this.abort.signal,
      })
        .then((res) => {
          if (!res.ok || !res.body) throw new Error(`all events: HTTP ${res.status}`);
          return readSse(res, (e) => {
            if (e.type === 'ready') ready();
            const id = e.id as string | undefined;
            if (e.type !== 'state' || !id || !FINAL.includes(e.state as string)) return false;
            const w = this.waiting.get(id);
            if (w) {
              this.waiting.delete(id);
              w(e.state as string);
            } else this.final.set(id, e.state as string);
            return false;
          });
        })
        .catch((err: unknown) => {
          if (!this.abort.signal.aborted) fail(err as Error);
        });
    });
  }

  wait(id: string): Promise<string> {
    const s = this.final.get(id);
    if (s) {
      this.final.delete(id);
      return Promise.resolve(s);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`job ${id}: no final state`)), WAIT_MS);
      this.waiting.set(id, (state) => {
        clearTimeout(t);
        resolve(state);
      });
    });
  }

  close(): void {
    this.abort.abort();
  }
}

async function submit(server: Server): Promise<string> {
  const res = await fetch(`${server.url}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'simulation', input: {}, maxAttempts: 1 }),
  });
  if (res.status !== 202 && res.status !== 201 && res.status !== 200)
    throw new Error(`submit: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

interface E2eRow {
  /** peerway: a stream per job (as `peerway jobs submit --wait`); peerway-stream: one stream of all jobs. */
  system: 'peerway' | 'peerway-stream' | 'bullmq';
  workers: number;
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds per 1,000 jobs of every process in it: server (Peerway), redis, this bench's clients and workers. */
  cpuSPer1000: number;
}

async function peerwayRun(
  server: Server,
  redisPid: number,
  workers: WebSocket[],
  jobs: number,
  oneStream: boolean,
): Promise<E2eRow> {
  const lat: number[] = [];
  let failed = 0;
  const all = oneStream ? new AllJobEvents(server) : null;
  await all?.ready;
  const own0 = process.cpuUsage();
  const cpu0 = procCpuS(server.child.pid) + procCpuS(redisPid);
  const t0 = performance.now();
  try {
    await pool(jobs, IN_FLIGHT, async () => {
      const s = performance.now();
      const id = await submit(server);
      const state = all ? await all.wait(id) : await waitForJob(server, id);
      if (state !== 'succeeded') failed++;
      lat.push(performance.now() - s);
    });
  } finally {
    all?.close();
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  const cpu =
    procCpuS(server.child.pid) + procCpuS(redisPid) - cpu0 + (own.user + own.system) / 1e6;
  if (failed > 0) throw new Error(`peerway: ${failed} of ${jobs} jobs did not succeed`);
  return {
    system: oneStream ? 'peerway-stream' : 'peerway',
    workers: workers.length,
    jobsPerSec: Math.round(jobs / elapsedS),
    p50Ms: +percentile(lat, 50).toFixed(1),
    p99Ms: +percentile(lat, 99).toFixed(1),
    cpuSPer1000: +((cpu * 1000) / jobs).toFixed(2),
  };
}

async function bullmqRun(
  redisPort: number,
  redisPid: number,
  workerCount: number,
  jobs: number,
): Promise<E2eRow> {
  const connection = { host: '127.0.0.1', port: redisPort, db: 1 };
  const name = `bench-${workerCount}-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const workers = Array.from(
    { length: workerCount },
    () => new Worker(name, async () => ({ ok: true }), { connection, concurrency: 1 }),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  try {
    const lat: number[] = [];
    const cpu0 = process.cpuUsage();
    const r0 = procCpuS(redisPid);
    const t0 = performance.now();
    await pool(jobs, IN_FLIGHT, async () => {
      const s = performance.now();
      const job = await queue.add('noop', {}, { attempts: 1 });
      await job.waitUntilFinished(events, WAIT_MS);
      lat.push(performance.now() - s);
    });
    const elapsedS = (performance.now() - t0) / 1000;
    const own = process.cpuUsage(cpu0);
    const cpu = (own.user + own.system) / 1e6 + procCpuS(redisPid) - r0;
    return {
      system: 'bullmq',
      workers: workerCount,
      jobsPerSec: Math.round(jobs / elapsedS),
      p50Ms: +percentile(lat, 50).toFixed(1),
      p99Ms: +percentile(lat, 99).toFixed(1),
      cpuSPer1000: +((cpu * 1000) / jobs).toFixed(2),
    };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await queue.obliterate({ force: true }).catch(() => {});
    await events.close();
    await queue.close();
  }
}

async function connectWorkers(server: Server, n: number): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < n; i += 100) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, () => connectWorker(server)),
      )),
    );
  }
  // every worker's slot is known to the server once GET /api/workers lists them all
  for (let tries = 0; tries < 100; tries++) {
    const res = await fetch(`${server.url}/api/workers`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    const body = (await res.json()) as { workers?: unknown[] } | unknown[];
    const listed = Array.isArray(body) ? body.length : (body.workers?.length ?? 0);
    if (listed >= n) return out;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`only some of ${n} workers were listed`);
}

interface SplitRow {
  phase: string;
  /** Server CPU µs per request or job (user + system). */
  serverUs: number;
  serverSystemUs: number;
  redisUs: number;
  perSec: number;
}

/**
 * Where the server's CPU goes per job, each phase alone on a fresh server
 * (no other load of its own): a bare Node HTTP server answering the same
 * POST (the floor of one request, in this run), an unknown API route (the
 * app's HTTP cost: host checks, caller, router, the JSON error), submits
 * with no worker connected, and 10 workers draining what was submitted.
 */
async function splitRun(redisUrl: string, redisPid: number, n: number): Promise<SplitRow[]> {
  const out: SplitRow[] = [];
  const measure = async (
    phase: string,
    pid: number,
    go: () => Promise<void>,
    count: number,
  ): Promise<void> => {
    const [u0, s0] = procUserSys(pid);
    const r0 = procCpuS(redisPid);
    const t0 = performance.now();
    await go();
    const [u1, s1] = procUserSys(pid);
    out.push({
      phase,
      serverUs: Math.round(((u1 - u0 + s1 - s0) * 1e6) / count),
      serverSystemUs: Math.round(((s1 - s0) * 1e6) / count),
      redisUs: Math.round(((procCpuS(redisPid) - r0) * 1e6) / count),
      perSec: Math.round(count / ((performance.now() - t0) / 1000)),
    });
  };
  const body = JSON.stringify({ type: 'simulation', input: {}, maxAttempts: 1 });
  const post = async (url: string, token: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
  };
  // the floor: Node's own HTTP server in its own process, reading the body, answering JSON
  const bare = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => { r.writeHead(202, { 'content-type': 'application/json' }); r.end(JSON.stringify({ id: 'x', state: 'queued' })); }); }).listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const bareChild = new Child(bare);
  try {
    const port = await new Promise<string>((resolve) =>
      createInterface({ input: bare.stdout! }).once('line', resolve),
    );
    const url = `http://127.0.0.1:${port}/api/jobs`;
    await pool(200, IN_FLIGHT, () => post(url, 'x'));
    await measure(
      'bare Node HTTP server, same POST',
      bare.pid!,
      () => pool(n, IN_FLIGHT, () => post(url, 'x')),
      n,
    );
  } finally {
    await bareChild.stop();
  }
  const server = await startServer(redisUrl);
  try {
    const get = async (path: string) => {
      const res = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${server.token}` },
      });
      await res.arrayBuffer();
    };
    await pool(200, IN_FLIGHT, () => get('/api/no-such-route'));
    await measure(
      'Peerway: an unknown API route (404)',
      server.child.pid,
      () => pool(n, IN_FLIGHT, () => get('/api/no-such-route')),
      n,
    );
    await pool(200, IN_FLIGHT, () => submit(server).then(() => undefined));
    await measure(
      'Peerway: POST /api/jobs, no worker',
      server.child.pid,
      () => pool(n, IN_FLIGHT, () => submit(server).then(() => undefined)),
      n,
    );
    const queued = n + 200;
    let workers: WebSocket[] = [];
    await measure(
      'Peerway: 10 workers drain them (lease, result, end; no event stream)',
      server.child.pid,
      async () => {
        workers = await connectWorkers(server, 10);
        const until = Date.now() + WAIT_MS;
        for (;;) {
          const res = await fetch(`${server.url}/api/jobs?state=queued&limit=1`, {
            headers: { authorization: `Bearer ${server.token}` },
          });
          const { jobs } = (await res.json()) as { jobs: unknown[] };
          if (jobs.length === 0) break;
          if (Date.now() > until) throw new Error('the workers did not drain the queue in time');
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      queued,
    );
    for (const ws of workers) ws.terminate();
  } finally {
    await server.child.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'pw-jobs-bench-'));
const redis = await startRedis(dir);
const redisUrl = `redis://127.0.0.1:${redis.port}/0`;
const sample = startLoadSample();
const rows: E2eRow[] = [];
let many: Record<string, number> | null = null;
let split: SplitRow[] = [];
let server: Server | null = null;
try {
  for (const w of WORKERS) {
    server = await startServer(redisUrl);
    const workers = await connectWorkers(server, w);
    await peerwayRun(server, redis.child.pid, workers, Math.min(100, JOBS), true); // warm-up
    await bullmqRun(redis.port, redis.child.pid, w, Math.min(100, JOBS)); // warm-up
    if (process.env.BENCH_REDIS_STATS) {
      // Redis commands per job, each system alone
      const r = new Redis({ host: '127.0.0.1', port: redis.port });
      for (const [label, go] of [
        ['peerway', () => peerwayRun(server!, redis.child.pid, workers, 200, true)],
        ['bullmq', () => bullmqRun(redis.port, redis.child.pid, w, 200)],
      ] as const) {
        await r.config('RESETSTAT');
        await go();
        const stats = String(await r.info('commandstats'))
          .split('\n')
          .map((l) => /^cmdstat_([^:]+):calls=(\d+)/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => [m[1]!, Number(m[2]) / 200] as const)
          .sort((a, b) => b[1] - a[1]);
        const total = stats.reduce((n, [, c]) => n + c, 0);
        console.log(
          `${label}: ${total.toFixed(1)} Redis commands per job:`,
          stats.map(([k, c]) => `${k} ${c.toFixed(1)}`).join(', '),
        );
      }
      r.disconnect();
    }
    for (let run = 0; run < RUNS; run++) {
      deadline();
      // alternate which goes first so a slow patch of the machine hits both
      const go = [
        () => peerwayRun(server!, redis.child.pid, workers, JOBS, true),
        () => bullmqRun(redis.port, redis.child.pid, w, JOBS),
        () => peerwayRun(server!, redis.child.pid, workers, JOBS, false),
      ];
      if (run % 2 === 1) go.reverse();
      for (const f of go) rows.push(await f());
    }
    for (const ws of workers) ws.terminate();
    await server.child.stop();
    server = null;
  }

  // many workers on one instance
  deadline();
  server = await startServer(redisUrl);
  await new Promise((r) => setTimeout(r, 500));
  const rss0 = procRss(server.child.pid);
  const c0 = performance.now();
  const workers = await connectWorkers(server, MANY_WORKERS);
  const connectS = (performance.now() - c0) / 1000;
  const rss1 = procRss(server.child.pid);
  const row = await peerwayRun(server, redis.child.pid, workers, JOBS, true);
  many = {
    workers: MANY_WORKERS,
    connectS: +connectS.toFixed(1),
    rssBeforeMiB: +(rss0 / 2 ** 20).toFixed(1),
    rssAfterMiB: +(rss1 / 2 ** 20).toFixed(1),
    rssPerWorkerKiB: +((rss1 - rss0) / MANY_WORKERS / 1024).toFixed(1),
    jobsPerSec: row.jobsPerSec,
    p50Ms: row.p50Ms,
    p99Ms: row.p99Ms,
  };
  for (const ws of workers) ws.terminate();
  await server.child.stop();
  server = null;
  deadline();
  if (process.env.BENCH_JOBS_SPLIT !== '0') split = await splitRun(redisUrl, redis.child.pid, JOBS);
} finally {
  await server?.child.stop();
  await redis.child.stop();
  rmSync(dir, { recursive: true, force: true });
}

const load = sample.end();

const summary = WORKERS.map((w) => {
  const of = (system: E2eRow['system']) => {
    const r = rows.filter((x) => x.system === system && x.workers === w);
    return {
      jobsPerSec: stat(r.map((x) => x.jobsPerSec)),
      p50Ms: stat(r.map((x) => x.p50Ms)),
      p99Ms: stat(r.map((x) => x.p99Ms)),
      cpuSPer1000: stat(r.map((x) => x.cpuSPer1000)),
    };
  };
  const stream = of('peerway-stream');
  const perJob = of('peerway');
  const bullmq = of('bullmq');
  return {
    workers: w,
    /** One event stream of all the submitter's jobs (like BullMQ's QueueEvents). */
    peerway: stream,
    /** A stream per job, as `peerway jobs submit --wait` opens. */
    peerwayStreamPerJob: perJob,
    bullmq,
    ratio: +(stream.jobsPerSec.median / bullmq.jobsPerSec.median).toFixed(2),
    ratioStreamPerJob: +(perJob.jobsPerSec.median / bullmq.jobsPerSec.median).toFixed(2),
  };
});

const fmt = (s: { median: number; min: number; max: number }) => `${s.median} (${s.min}–${s.max})`;
console.log(
  `\n## Jobs end to end, ${JOBS} no-op jobs, ${IN_FLIGHT} in flight, ${RUNS} runs (${new Date().toISOString().slice(0, 10)})\n`,
);
console.log(
  'Peerway follows its jobs on one event stream (`GET /api/jobs/events`, as BullMQ follows them on QueueEvents), or on a stream per job (`GET /api/jobs/:id/events`, as `peerway jobs submit --wait` does). CPU: every process in the run (server, redis-server, the clients and workers).\n',
);
console.log(
  '| workers | Peerway jobs/s | ratio to BullMQ | Peerway, a stream per job | ratio | BullMQ jobs/s | p50 / p99 ms: Peerway, per job, BullMQ | CPU s per 1,000 jobs: Peerway, per job, BullMQ |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const s of summary) {
  const lat = (x: typeof s.bullmq) => `${x.p50Ms.median} / ${x.p99Ms.median}`;
  console.log(
    `| ${s.workers} | ${fmt(s.peerway.jobsPerSec)} | ${s.ratio} | ${fmt(s.peerwayStreamPerJob.jobsPerSec)} | ${s.ratioStreamPerJob} | ${fmt(s.bullmq.jobsPerSec)} | ${lat(s.peerway)}, ${lat(s.peerwayStreamPerJob)}, ${lat(s.bullmq)} | ${s.peerway.cpuSPer1000.median}, ${s.peerwayStreamPerJob.cpuSPer1000.median}, ${s.bullmq.cpuSPer1000.median} |`,
  );
}
if (many) {
  console.log(`\n## ${many.workers} workers on one instance\n`);
  console.log(
    '| connect s | server RSS before → after MiB | per worker KiB | jobs/s | p50 / p99 ms |',
  );
  console.log('|---|---|---|---|---|');
  console.log(
    `| ${many.connectS} | ${many.rssBeforeMiB} → ${many.rssAfterMiB} | ${many.rssPerWorkerKiB} | ${many.jobsPerSec} | ${many.p50Ms} / ${many.p99Ms} |`,
  );
}
if (split.length > 0) {
  console.log(`\n## Where the server's CPU goes, ${JOBS} requests or jobs per phase\n`);
  console.log('| phase | server CPU µs each (of it system) | redis-server µs each | per second |');
  console.log('|---|---|---|---|');
  for (const r of split)
    console.log(
      `| ${r.phase} | ${r.serverUs} (${r.serverSystemUs}) | ${r.redisUs} | ${r.perSec} |`,
    );
}
console.log(`\nMachine: ${cpus().length} cores. ${loadLine(load)}`);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, `bench/results/jobs-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      jobs: JOBS,
      inFlight: IN_FLIGHT,
      runs: RUNS,
      load,
      summary,
      rows,
      many,
      split,
    },
    null,
    2,
  ),
);
console.log(`JSON: ${out}`);
process.exit(0);
