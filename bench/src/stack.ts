/**
 * The stack both benchmarks measure: an upstream app on loopback, a real
 * server in-process, and a real agent process exposing the app as the public
 * service `bench`. `close()` stops all of it and removes its temp dirs.
 */
import type { Writable } from 'node:stream';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { parseConfig, startPeerwayServer, type PeerwayServer } from '@peerway/signaling-server';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface BenchStack {
  server: PeerwayServer;
  appPort: number;
  /** The agent's resident set size now, in bytes. */
  agentRss(): number;
  /** The agent's CPU time so far (user + system), seconds. */
  agentCpuS(): number;
  close(): Promise<void>;
}

/** Median, min and max of a sample (NaN for an empty one: a part the run left out). */
export function stat(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN };
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

const chunk = Buffer.alloc(256 * 1024, 7);

/** Writes `bytes` of filler to `out` as fast as it drains, then ends it. */
export function sendFiller(out: Writable, bytes: number): void {
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!out.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
        return void out.once('drain', pump);
    }
    out.end();
  };
  pump();
}

/** The upstream: /small, /big?bytes=N (streamed), /upload (counts), /app.js, and an HTML page. */
export function upstreamApp(): http.Server {
  return http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/small') return void res.end('ok');
    if (u.pathname === '/big') {
      const bytes = Number(u.searchParams.get('bytes'));
      res.writeHead(200, { 'content-length': bytes, 'content-type': 'application/octet-stream' });
      return sendFiller(res, bytes);
    }
    if (u.pathname === '/upload') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    if (u.pathname === '/app.js')
      return void res.setHeader('content-type', 'text/javascript').end('window.appReady = true;');
    if (u.pathname === '/') {
      res.setHeader('content-type', 'text/html');
      return void res.end(
        '<!doctype html><html><head><title>bench</title><script src="/app.js"></script></head><body><h1 id="t">bench</h1></body></html>',
      );
    }
    res.writeHead(404).end();
  });
}

/** The agent's WebRTC engines, in the order benchmarks run them (BENCH_ENGINES=a,b to pick). */
export const BENCH_ENGINES = (process.env.BENCH_ENGINES ?? 'werift,node-datachannel')
  .split(',')
  .filter(Boolean);

export async function startBenchStack(engine = BENCH_ENGINES[0]!): Promise<BenchStack> {
  const app = upstreamApp();
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as { port: number }).port;
  const dataDir = mkdtempSync(join(tmpdir(), 'pw-bench-'));
  const home = mkdtempSync(join(tmpdir(), 'pw-bench-agent-'));
  const server = await startPeerwayServer(parseConfig({ port: 0, dataDir }));
  const user = await server.store.createUser({
    email: 'bench@test.invalid',
    passwordHash: null,
    isAdmin: false,
    externalSubject: null,
  });
  const { token } = await server.auth.createAccessToken(user.id, 'bench');
  const agent = spawn(
    process.execPath,
    [
      // BENCH_AGENT_PROF=<dir>: the agent's CPU profile (.cpuprofile) lands there when it stops
      ...(process.env.BENCH_AGENT_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_AGENT_PROF}`]
        : []),
      join(ROOT, 'node-agent/bin/peerway-agent.js'),
      'run',
      '--server',
      server.config.publicUrl,
      '--token',
      token,
      '--service',
      `bench=127.0.0.1:${appPort},public`,
      '--engine',
      engine,
    ],
    {
      env: { PEERWAY_LOG_LEVEL: 'warn', ...process.env, PEERWAY_HOME: home },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  // PEERWAY_LOG_LEVEL=debug BENCH_AGENT_LOG=1: the agent's log on stderr
  if (process.env.BENCH_AGENT_LOG) agent.stdout!.on('data', (d: Buffer) => process.stderr.write(d));
  await new Promise<void>((r) =>
    agent.stdout!.on('data', (d: Buffer) => /✓/.test(d.toString()) && r()),
  );
  return {
    server,
    appPort,
    agentRss: () =>
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))![1]) * 1024,
    agentCpuS: () => {
      // fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks (100/s on Linux)
      const f = readFileSync(`/proc/${agent.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    async close() {
      agent.kill('SIGTERM');
      await server.close();
      app.closeAllConnections();
      app.close();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The tests' own Chromium launcher: one list of flags for e2e and bench. */
export { launchChromium } from '../../e2e/support/chromium';
