/**
 * Transport liveness: the server's ws pings find dead sockets, but a peer
 * that misses a ping or two (its event loop busy for a second, as an agent's
 * is when a burst of sessions opens) keeps its connection. Real server,
 * real WebSockets that answer pings by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { withServer } from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  // pings every second, as in the e2e stack
  ctx = await withServer({ heartbeatIntervalMs: 1000, presenceTimeoutMs: 30_000 });
  server = ctx.server;
});
afterAll(() => ctx.stop());

/** A client socket that answers pings only while `answering` is true. */
async function socket() {
  const ws = new WebSocket(server.url.replace('http', 'ws') + '/ws/client', { autoPong: false });
  const s = { ws, answering: true, closed: false };
  ws.on('ping', (d) => s.answering && ws.pong(d));
  ws.on('close', () => (s.closed = true));
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  ws.send(JSON.stringify({ type: 'ping' })); // say something, so the client timeouts leave it be
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ws liveness', () => {
  it('a peer that misses two pings in a row keeps its connection; one that answers none is dropped', async () => {
    const busy = await socket();
    const dead = await socket();
    busy.answering = false;
    dead.answering = false;
    await sleep(2300); // two pings unanswered
    busy.answering = true;
    await sleep(3500);
    expect(busy.closed).toBe(false);
    expect(dead.closed).toBe(true);
    busy.ws.close();
  }, 15_000);
});
