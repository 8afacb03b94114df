/**
 * A service whose upstream is not running: `run` checks it at start and
 * prints ✗ (never ✓) with a hint, notices when it starts and when it stops
 * again (once each), and a visitor meanwhile gets a styled "down" page (502)
 * that says nothing of the node's inside: no address, port or error. Real
 * server, real agent process, real peer connection (the Node tunnel client).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { connectTunnel, type TunnelClient } from '@peerway/node-agent/client';
import type { PeerwayServer } from '@peerway/signaling-server';
import { Fixture, readAll, type AgentProcess } from './helpers';

const fx = new Fixture();
let server: PeerwayServer;
let agent: AgentProcess;
let port: number;
let t: TunnelClient;

/** A free loopback port, released again. */
const freePort = () =>
  new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });

beforeAll(async () => {
  port = await freePort();
  server = await fx.server();
  const { token } = await fx.user(server);
  agent = await fx.agent({
    serverUrl: server.config.publicUrl,
    token,
    services: [`later=127.0.0.1:${port},public`],
    waitFor: /✗ http:\/\/later\.\S+ {2}→ {2}\S+ is not reachable/,
  });
  t = await connectTunnel({ serverUrl: server.config.publicUrl, service: 'later' });
  fx.onCleanup(() => t.close());
}, 60_000);
afterAll(() => fx.cleanup());

const get = async (accept: string) => {
  const r = await t.request('GET', '/notes', { headers: [['accept', accept]] });
  return { ...r, text: (await readAll(r.body)).toString() };
};

/** What must not reach a visitor: where the upstream lives and how it failed. */
function expectNothingInternal(r: { text: string; headers: [string, string][] }): void {
  const all = r.text + JSON.stringify(r.headers);
  expect(all).not.toContain(String(port));
  expect(all).not.toContain('127.0.0.1');
  expect(all).not.toMatch(/ECONNREFUSED|refused/i);
}

it('start: ✗ with a hint for the upstream that is not running, never ✓', () => {
  expect(agent.stdout).toMatch(
    new RegExp(
      `✗ later → http://127\\.0\\.0\\.1:${port} is not reachable \\(connection refused .*\\): start it on this machine`,
    ),
  );
  expect(agent.stdout).not.toMatch(/✓/);
});

it('a visitor gets a styled 502 page that says the service is down, and nothing internal', async () => {
  const html = await get('text/html,application/xhtml+xml,*/*;q=0.8');
  expect(html.status).toBe(502);
  expect(html.headers.find(([k]) => k === 'content-type')?.[1]).toMatch(/^text\/html/);
  expect(html.text).toMatch(/<h1>later is down<\/h1>/);
  expect(html.text).toMatch(/try again later/i);
  expect(html.text).toMatch(/<style>/);
  expectNothingInternal(html);
  const api = await get('application/json');
  expect(api.status).toBe(502);
  expect(api.headers.find(([k]) => k === 'content-type')?.[1]).toMatch(/^text\/plain/);
  expect(api.text).toMatch(/later is down on its node/);
  expectNothingInternal(api);
});

it('notices once when the upstream starts, serves it, and notices when it stops again', async () => {
  const from = agent.stdout.length;
  const app: Server = createHttpServer((_q, r) => r.end('notes here')).listen(port, '127.0.0.1');
  await once(app, 'listening');
  fx.onCleanup(() => void app.close());
  await agent.waitFor(/✓ http:\/\/later\.\S+ {2}→ {2}\S+ answers again/, 20_000, from);
  const ok = await get('text/html');
  expect(ok.status).toBe(200);
  expect(ok.text).toBe('notes here');

  const up = agent.stdout.length;
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
  expect((await get('text/html')).status).toBe(502);
  expect((await get('text/html')).status).toBe(502);
  await agent.waitFor(/✗ later → \S+ stopped answering \(connection refused/, 10_000, up);
  expect(agent.stdout.slice(up).match(/stopped answering/g)).toHaveLength(1);
}, 60_000);
