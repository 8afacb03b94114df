/**
 * What `peerway-agent run` tells its owner about the server, in words on
 * stdout (the JSON log stays on stderr): that it cannot reach it and keeps
 * retrying, once however many attempts fail; that it is connected, lost,
 * and back; and that a token was rejected, with what to do.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { AgentProcess, Fixture } from './helpers';

const BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');
const fx = new Fixture();
afterAll(() => fx.cleanup());

/** A free loopback port, released again. */
const freePort = () =>
  new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });

/** `peerway-agent run` with an info-level log on stderr, to count its attempts. */
function startAgent(args: string[]): AgentProcess {
  const home = fx.tmp('pw-first-');
  const proc = spawn(process.execPath, [BIN, 'run', ...args], {
    env: { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const a = new AgentProcess(proc, home);
  fx.onCleanup(() => a.kill());
  return a;
}

/** Resolves once the agent's log shows `n` reconnect attempts. */
const attempts = (a: AgentProcess, n: number) =>
  new Promise<void>((resolve, reject) => {
    const count = () => a.stderr.split('"reconnecting to the server"').length - 1;
    const t = setTimeout(() => reject(new Error(`fewer than ${n} attempts: ${a.stderr}`)), 30_000);
    const check = () => {
      if (count() < n) return;
      clearTimeout(t);
      a.proc.stderr!.off('data', check);
      resolve();
    };
    a.proc.stderr!.on('data', check);
    check();
  });

const count = (s: string, re: RegExp) => s.split('\n').filter((l) => re.test(l)).length;

it('says once that it cannot reach the server and keeps retrying; then connected, lost, back', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const a = startAgent(['--server', url, '--service', 'notes=127.0.0.1:1']);
  const cannot = new RegExp(
    `^Cannot reach ${url}: connection refused .*; retrying every 30 s at most until it answers\\.$`,
    'm',
  );
  await a.waitFor(cannot, 20_000);
  await attempts(a, 4);
  expect(count(a.stdout, /Cannot reach/)).toBe(1);
  expect(a.stdout).not.toMatch(/^\{/m); // no JSON on stdout
  expect(a.stderr).toMatch(/"state":"disconnected"/); // the log is still there

  const dataDir = fx.tmp('pw-server-');
  const first = await fx.server({ port, dataDir });
  await a.waitFor(new RegExp(`^Connected to ${url} as node [0-9a-f]{6}`, 'm'), 30_000);
  const connectedAt = a.stdout.length;
  await first.close();
  await a.waitFor(new RegExp(`^Lost the connection to ${url}: .+; reconnecting`, 'm'), 20_000);
  await a.waitFor(cannot, 20_000, connectedAt);
  await fx.server({ port, dataDir });
  await a.waitFor(
    new RegExp(`^Connected to ${url} again \\(after \\d+ s away\\) as node`, 'm'),
    40_000,
  );
  expect(count(a.stdout.slice(connectedAt), /Cannot reach/)).toBe(1);
}, 120_000);

it('says in words that a token was rejected and how to get a working one', async () => {
  const server = await fx.server();
  const a = startAgent([
    '--server',
    server.config.publicUrl,
    '--token',
    `pwt_${'0'.repeat(12)}_${'A'.repeat(32)}`,
  ]);
  await a.waitFor(
    /^Token rejected: the access token is not valid; get a new one from the dashboard and run `peerway-agent login TOKEN`/m,
    30_000,
  );
  // and the node is still usable: it offers its claim link
  await a.waitFor(/not claimed yet/, 10_000);
}, 60_000);

it('refuses a --token that is not one before connecting', async () => {
  const a = startAgent(['--server', 'http://127.0.0.1:9', '--token', 'not-a-token']);
  const code = await new Promise<number | null>((r) => a.proc.once('exit', r));
  expect(code).toBe(1);
  expect(a.stderr).toMatch(/"not-a-token" is not an access token/);
});
