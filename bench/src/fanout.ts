/**
 * Fan-out: N concurrent sessions on one agent (10, 50, 100). The sessions
 * come from Node tunnel clients (`connectTunnel`: the same signaling and
 * data-channel path a browser shell takes; a hundred Chromium tabs on two
 * cores would measure Chromium more than the agent). All N open, then all N
 * download their share of 64 MiB at once, and every session also makes a
 * small request afterwards (is each one still served?). Reported: sessions
 * that completed, per-session and total throughput, agent CPU (cores) and
 * RSS peak while serving.
 *
 * Usage: tsx src/fanout.ts [--sessions 10,50,100]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectTunnel, type TunnelClient } from '@peerway/node-agent/client';
import { ROOT, startBenchStack, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const QUICK = process.env.BENCH_QUICK === '1';
const COUNTS = (args.get('sessions') ?? (QUICK ? '10,50' : '10,50,100')).split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 3));
const TOTAL_BYTES = 64 * 1024 * 1024;
/** Every phase is bounded. */
const PHASE_TIMEOUT_MS = 120_000;

async function drain(body: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) n += c.byteLength;
  return n;
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(
        () => reject(new Error(`${what} took over ${PHASE_TIMEOUT_MS} ms`)),
        PHASE_TIMEOUT_MS,
      );
    }),
  ]);
}

interface Row {
  sessions: number;
  opened: number;
  completed: number;
  openSeconds: number;
  perSessionMBps: number;
  totalMBps: number;
  agentCpuCores: number;
  agentRssPeakMiB: number;
  agentRssIdleMiB: number;
}

async function once(n: number): Promise<Row> {
  const stack = await startBenchStack();
  const url = stack.server.config.publicUrl;
  const clients: TunnelClient[] = [];
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = stack.agentRss();
    const o0 = performance.now();
    // Ten at a time, as sessions from many browsers would trickle in.
    for (let i = 0; i < n; i += 10) {
      const batch = await bounded(
        Promise.allSettled(
          Array.from({ length: Math.min(10, n - i) }, () =>
            connectTunnel({ serverUrl: url, service: 'bench', timeoutMs: 30_000 }),
          ),
        ),
        'opening sessions',
      );
      for (const r of batch)
        if (r.status === 'fulfilled') clients.push(r.value);
        else console.error(`[fanout] a session failed: ${(r.reason as Error).message}`);
    }
    const openSeconds = (performance.now() - o0) / 1000;
    let peak = stack.agentRss();
    const sampler = setInterval(() => (peak = Math.max(peak, stack.agentRss())), 200);
    const each = Math.floor(TOTAL_BYTES / clients.length);
    const cpu0 = stack.agentCpuS();
    const t0 = performance.now();
    const rates = await bounded(
      Promise.all(
        clients.map(async (c) => {
          const s = performance.now();
          const got = await drain((await c.request('GET', `/big?bytes=${each}`)).body);
          if (got !== each) throw new Error(`short download: ${got} of ${each}`);
          return got / 1e6 / ((performance.now() - s) / 1000);
        }),
      ),
      'downloading',
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = (stack.agentCpuS() - cpu0) / wall;
    clearInterval(sampler);
    // Still served, every one of them?
    const ok = await bounded(
      Promise.all(
        clients.map(async (c) => {
          const r = await c.request('GET', '/small');
          return r.status === 200 && (await drain(r.body)) === 2;
        }),
      ),
      'small requests',
    );
    return {
      sessions: n,
      opened: clients.length,
      completed: ok.filter(Boolean).length,
      openSeconds: +openSeconds.toFixed(2),
      perSessionMBps: +stat(rates).median.toFixed(2),
      totalMBps: +((each * clients.length) / 1e6 / wall).toFixed(1),
      agentCpuCores: +cpu.toFixed(2),
      agentRssPeakMiB: +(peak / 2 ** 20).toFixed(1),
      agentRssIdleMiB: +(idle / 2 ** 20).toFixed(1),
    };
  } finally {
    for (const c of clients) c.close();
    await stack.close();
  }
}

async function main(): Promise<void> {
  const results: Record<string, Row[]> = {};
  for (const n of COUNTS) {
    results[n] = [];
    for (let r = 0; r < RUNS; r++) {
      const row = await once(n);
      results[n].push(row);
      console.error(`[fanout] ${n} sessions, run ${r + 1}/${RUNS}: ${JSON.stringify(row)}`);
    }
  }
  const fmt = (xs: number[], digits = 1) => {
    const s = stat(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  console.log(
    [
      `Fan-out: N concurrent sessions on one agent (Node tunnel clients), 64 MiB split across them, median (min–max) of ${RUNS}`,
      '',
      '| sessions | served (opened / answered after) | open all, s | per session MB/s | total MB/s | agent CPU, cores | agent RSS peak MiB |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...Object.entries(results).map(
        ([n, rows]) =>
          `| ${n} | ${Math.min(...rows.map((r) => r.opened))} / ${Math.min(...rows.map((r) => r.completed))} | ${fmt(
            rows.map((r) => r.openSeconds),
            2,
          )} | ${fmt(
            rows.map((r) => r.perSessionMBps),
            2,
          )} | ${fmt(rows.map((r) => r.totalMBps))} | ${fmt(
            rows.map((r) => r.agentCpuCores),
            2,
          )} | ${fmt(rows.map((r) => r.agentRssPeakMiB))}, idle ${stat(rows.map((r) => r.agentRssIdleMiB)).median.toFixed(0)} |`,
      ),
    ].join('\n'),
  );
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fanout-${new Date().toISOString().slice(0, 10)}.json`);
  const runLoad = loadSample.end();
  console.log(`\n${loadLine(runLoad)}`);
  writeFileSync(
    file,
    JSON.stringify({ load: runLoad, at: new Date().toISOString(), results }, null, 2) + '\n',
  );
  console.log(`\nwrote ${file}`);
}

await main();
