/**
 * Signaling scale: N simulated agents (real WebSockets, real Ed25519
 * challenge proofs) held open against one server process, then the rate at
 * which it brokers sessions (open → session → offer → answer, with fake SDP:
 * the server never looks inside) between simulated clients and a few of
 * those agents serving one service. Reports server RSS per connection and
 * server CPU per brokered session, read from /proc for the server process.
 *
 * Usage: tsx src/scale.ts [--agents 1000,10000] [--seconds 5] [--clients 50]
 * Everything is on loopback and bounded in count and time.
 */
import { spawn } from 'node:child_process';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { encodeMessage, type ServerToAgent, type ServerToClient } from '@peerway/protocol';
import { generateIdentity, signChallenge } from '@peerway/protocol/node';
import { ROOT, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const QUICK = process.env.BENCH_QUICK === '1';
const AGENT_COUNTS = (args.get('agents') ?? (QUICK ? '1000' : '1000,10000')).split(',').map(Number);
const BROKER_SECONDS = Number(args.get('seconds') ?? (QUICK ? 3 : 5));
const CLIENTS = Number(args.get('clients') ?? 50);
const REPLICAS = 10;
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 3));
/** Hard stop for the whole benchmark. */
const DEADLINE_MS = 15 * 60_000;

const ticks = 100; // USER_HZ on Linux
function procStat(pid: number): { rss: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rss, cpuS: (Number(f[11]) + Number(f[12])) / ticks };
}

async function startServer() {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/src/scale-server.ts')],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`scale server exited ${c}`)));
  });
  const info = JSON.parse(line) as { url: string; token: string; accessToken: string; pid: number };
  return {
    ...info,
    ws: info.url.replace('http', 'ws'),
    async stop() {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    },
  };
}

interface SimAgent {
  ws: WebSocket;
  shortId: string;
}

/** One agent: challenge → signed auth → welcome. Replicas answer every offer at once. */
function connectAgent(wsBase: string, token: string, serve: boolean): Promise<SimAgent> {
  const id = generateIdentity();
  const ws = new WebSocket(`${wsBase}/ws/agent`);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('agent handshake timed out')), 60_000);
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
            token,
            services: serve ? [{ name: 'scale', public: true }] : [],
          }),
        );
      } else if (m.type === 'welcome') {
        clearTimeout(t);
        resolve({ ws, shortId: m.shortId });
      } else if (m.type === 'session') {
        ws.send(encodeMessage({ type: 'answer', sessionId: m.sessionId, sdp: 'v=0 bench-answer' }));
      }
    });
  });
}

/** A client that brokers sessions back to back until `until`; resolves with how many completed. */
function brokerLoop(wsBase: string, accessToken: string, until: number): Promise<number> {
  const ws = new WebSocket(`${wsBase}/ws/client`);
  let done = 0;
  let n = 0;
  return new Promise((resolve, reject) => {
    const next = () => {
      if (Date.now() >= until) {
        ws.close();
        return resolve(done);
      }
      ws.send(
        encodeMessage({ type: 'open', ref: `r${n++}`, service: 'scale', token: accessToken }),
      );
    };
    ws.on('error', reject);
    ws.on('open', next);
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as ServerToClient;
      if (m.type === 'session')
        ws.send(encodeMessage({ type: 'offer', sessionId: m.sessionId, sdp: 'v=0 bench-offer' }));
      else if (m.type === 'answer') {
        done++;
        ws.send(encodeMessage({ type: 'close', sessionId: m.sessionId }));
        next();
      } else if (m.type === 'session-error' || m.type === 'error') {
        reject(new Error(`${m.code}: ${m.message}`));
      }
    });
  });
}

async function batch<T>(n: number, width: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) {
    out.push(
      ...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => make(i + j)))),
    );
  }
  return out;
}

interface Row {
  agents: number;
  connectPerSec: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerConnKiB: number;
  sessionsPerSec: number;
  cpuMsPerSession: number;
  setupP50Ms: number | null;
}

async function once(agents: number): Promise<Row> {
  const server = await startServer();
  try {
    await new Promise((r) => setTimeout(r, 500));
    const before = procStat(server.pid);
    const t0 = performance.now();
    const sims = await batch(agents, 250, (i) =>
      connectAgent(server.ws, server.token, i < REPLICAS),
    );
    const connectS = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const after = procStat(server.pid);

    const until = Date.now() + BROKER_SECONDS * 1000;
    const cpu0 = procStat(server.pid).cpuS;
    const b0 = performance.now();
    const counts = await Promise.all(
      Array.from({ length: CLIENTS }, () => brokerLoop(server.ws, server.accessToken, until)),
    );
    const elapsed = (performance.now() - b0) / 1000;
    const cpu1 = procStat(server.pid).cpuS;
    const sessions = counts.reduce((a, b) => a + b, 0);
    const admin = (await (
      await fetch(`${server.url}/api/admin/signaling`, {
        headers: { authorization: `Bearer ${server.token}` },
      })
    ).json()) as { setupMs: { p50: number | null } };
    for (const s of sims) s.ws.terminate();
    return {
      agents,
      connectPerSec: Math.round(agents / connectS),
      rssBeforeMiB: +(before.rss / 2 ** 20).toFixed(1),
      rssAfterMiB: +(after.rss / 2 ** 20).toFixed(1),
      rssPerConnKiB: +((after.rss - before.rss) / agents / 1024).toFixed(1),
      sessionsPerSec: Math.round(sessions / elapsed),
      cpuMsPerSession: +(((cpu1 - cpu0) * 1000) / Math.max(1, sessions)).toFixed(3),
      setupP50Ms: admin.setupMs.p50,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error('scale benchmark: hard deadline reached, stopping');
    process.exit(2);
  }, DEADLINE_MS);
  deadline.unref();
  const results: Record<string, Row[]> = {};
  for (const n of AGENT_COUNTS) {
    results[n] = [];
    for (let r = 0; r < RUNS; r++) {
      const row = await once(n);
      results[n].push(row);
      console.error(`[scale] ${n} agents, run ${r + 1}/${RUNS}: ${JSON.stringify(row)}`);
    }
  }
  const fmt = (xs: number[], digits = 0) => {
    const s = stat(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  const lines = [
    `Signaling scale (one server process, ${CLIENTS} clients brokering for ${BROKER_SECONDS} s to ${REPLICAS} replicas, median (min–max) of ${RUNS})`,
    '',
    '| agents held | connect rate /s | server RSS MiB | RSS per agent KiB | sessions brokered /s | server CPU ms per session |',
    '| --- | --- | --- | --- | --- | --- |',
    ...Object.entries(results).map(
      ([n, rows]) =>
        `| ${n} | ${fmt(rows.map((r) => r.connectPerSec))} | ${fmt(
          rows.map((r) => r.rssAfterMiB),
          1,
        )} | ${fmt(
          rows.map((r) => r.rssPerConnKiB),
          1,
        )} | ${fmt(rows.map((r) => r.sessionsPerSec))} | ${fmt(
          rows.map((r) => r.cpuMsPerSession),
          3,
        )} |`,
    ),
  ];
  console.log(lines.join('\n'));
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scale-${new Date().toISOString().slice(0, 10)}.json`);
  const runLoad = loadSample.end();
  console.log(`\n${loadLine(runLoad)}`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        load: runLoad,
        at: new Date().toISOString(),
        clients: CLIENTS,
        seconds: BROKER_SECONDS,
        replicas: REPLICAS,
        results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nwrote ${file}`);
}

await main();
