/**
 * No socket is left hanging (issue 17, item 4), over real sockets: an
 * upgrade nobody takes is answered and closed at once, and a client
 * WebSocket that never asks for anything, or goes quiet with nothing going
 * on, is closed; one with a live session is left alone however quiet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { signServiceAccessToken } from '@peerway/protocol/node';
import { FakeAgent, FakeClient, makeUser, signalSession, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';

const FIRST_MESSAGE_MS = 300;
const IDLE_MS = 800;

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer(
    {},
    { limits: { clientFirstMessageTimeoutMs: FIRST_MESSAGE_MS, clientIdleTimeoutMs: IDLE_MS } },
  );
  server = ctx.server;
});
afterAll(() => ctx.stop());

const connections = () =>
  new Promise<number>((resolve, reject) =>
    server.httpServer.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

/** A raw upgrade request that never ends its side: what it hears, and when the server closed it. */
function rawUpgrade(path: string, host = new URL(server.url).host) {
  const { port } = new URL(server.url);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  let heard = '';
  socket.on('data', (d: Buffer) => (heard += d.toString()));
  socket.on('error', () => {});
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  const ended = new Promise<string>((resolve) => socket.once('close', () => resolve(heard)));
  return { socket, ended };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms),
    ),
  ]);

describe('upgrades on other paths', () => {
  it('100 upgrades on paths that are no WebSocket endpoint are all answered 404 and closed at once', async () => {
    const before = await connections();
    const paths = ['/', '/ws', '/ws/agentx', '/ws/client/', '/api/me', '/ws/../ws/agent'];
    const started = Date.now();
    const all = Array.from({ length: 100 }, (_, i) => rawUpgrade(paths[i % paths.length]!));
    const heard = await within(
      Promise.all(all.map((u) => u.ended)),
      3000,
      'closing 100 sockets',
    ).finally(() => all.forEach((u) => u.socket.destroy()));
    for (const h of heard) expect(h).toMatch(/^HTTP\/1\.1 404 /);
    expect(Date.now() - started).toBeLessThan(3000);
    // nothing left on the server's side either
    await expect.poll(connections, { timeout: 2000 }).toBeLessThanOrEqual(before);
  });

  it('the WebSocket endpoints still upgrade', async () => {
    const c = new FakeClient(server);
    await c.open();
    c.send({ type: 'ping' });
    expect(await c.next()).toEqual({ type: 'pong' });
    c.close();
  });
});

describe('client timeouts', () => {
  it('a client that sends nothing after connecting is closed (4002)', async () => {
    const c = new FakeClient(server);
    await c.open();
    const opened = Date.now();
    const { code } = await within(c.closed, FIRST_MESSAGE_MS + 2000, 'closing a mute client');
    expect(code).toBe(4002);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(FIRST_MESSAGE_MS - 50);
  });

  it('a client with no session that goes quiet is closed after the idle timeout (4012); pings keep it', async () => {
    const c = new FakeClient(server);
    await c.open();
    // pinging for twice the idle time keeps the socket
    const until = Date.now() + 2 * IDLE_MS;
    let lastPing = 0;
    while (Date.now() < until) {
      lastPing = Date.now();
      c.send({ type: 'ping' });
      await c.nextOf('pong');
      await new Promise((r) => setTimeout(r, IDLE_MS / 4));
    }
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    const { code } = await within(c.closed, IDLE_MS + 2000, 'closing an idle client');
    expect(code).toBe(4012);
    expect(Date.now() - lastPing).toBeGreaterThanOrEqual(IDLE_MS - 50);
  });

  it('a quiet client is kept while its session is live, and closed once the session ends', async () => {
    const { token, user } = await makeUser(server);
    const name = `svc-${Math.random().toString(36).slice(2, 8)}`;
    const agent = new FakeAgent(server);
    await agent.handshake({ token, services: [{ name, public: true }] });
    const accessToken = await signServiceAccessToken({
      privateKey: server.keys.accessPrivateKey,
      issuer: server.config.publicUrl,
      service: name,
      subject: user.id,
      access: 'private',
    });
    const client = new FakeClient(server);
    await client.open();
    client.send({ type: 'open', ref: 'r1', service: name, token: accessToken });
    const session = await client.nextOf('session');
    await signalSession(client, agent, session.sessionId, { service: name, token: accessToken });
    // The shell sends nothing while its tunnel is up: three idle periods pass.
    await new Promise((r) => setTimeout(r, 3 * IDLE_MS));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    // The node ends the session: the quiet socket goes within an idle period.
    agent.send({ type: 'session-closed', sessionId: session.sessionId, reason: 'done' });
    const { code } = await within(client.closed, 2 * IDLE_MS + 2000, 'closing after the session');
    expect(code).toBe(4012);
    agent.close();
  });
});
