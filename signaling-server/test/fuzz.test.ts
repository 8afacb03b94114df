/**
 * Thousands of random and mutated signaling messages against a live server
 * (bounded in count and time): the server never crashes, every bad message
 * gets an error, and an unrelated well-behaved agent and a brokering flow keep
 * working.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signServiceAccessToken } from '@peerway/protocol/node';
import { FakeAgent, FakeClient, makeUser, withServer, TestSocket } from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer();
  server = ctx.server;
});
afterAll(() => ctx.stop());

/** A small deterministic PRNG so a failure can be replayed. */
function prng(seed: number) {
  return () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

const VALID: unknown[] = [
  { type: 'heartbeat' },
  { type: 'services', services: [{ name: 'a' }] },
  { type: 'answer', sessionId: 'abc', sdp: 'v=0' },
  { type: 'candidate', sessionId: 'abc', candidate: null },
  { type: 'open', ref: 'r', service: 'svc', token: 'x' },
  { type: 'offer', sessionId: 'abc', sdp: 'v=0' },
  {
    type: 'session-stats',
    sessionId: 'abc',
    stats: { localCandidateType: 'host', remoteCandidateType: 'host', protocol: 'udp' },
  },
  { type: 'drain', draining: true },
];

function mutate(rand: () => number): string | Buffer {
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)]!;
  const kind = Math.floor(rand() * 9);
  const base = JSON.parse(JSON.stringify(pick(VALID))) as Record<string, unknown>;
  switch (kind) {
    case 0:
      return Buffer.from(
        Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)),
      );
    case 1: {
      const s = JSON.stringify(base);
      return s.slice(0, Math.floor(rand() * s.length));
    }
    case 2:
      base.type = pick(['', 'HEARTBEAT', 'x'.repeat(300), 42, null, ['heartbeat'], { a: 1 }]);
      return JSON.stringify(base);
    case 3:
      for (const k of Object.keys(base))
        if (k !== 'type') base[k] = pick([null, -1, 1e308, 'x'.repeat(5000), [], {}, true]);
      return JSON.stringify(base);
    case 4:
      return JSON.stringify({ ...base, sdp: 'x'.repeat(40_000) });
    case 5: {
      let deep: unknown = 1;
      for (let i = 0; i < 2000; i++) deep = [deep];
      return JSON.stringify({ ...base, services: deep });
    }
    case 6:
      return pick(['null', '[]', '"str"', '1', '{}', 'true', '{"type":"auth"}', '\u0000\u0001']);
    case 7:
      return JSON.stringify({
        ...base,
        __proto__: { isAdmin: true },
        constructor: { prototype: { x: 1 } },
      });
    default:
      return 'x'.repeat(70_000);
  }
}

it('survives thousands of hostile messages; bystanders keep working', async () => {
  const { token, user } = await makeUser(server);
  const bystander = new FakeAgent(server);
  await bystander.handshake({ token, services: [{ name: 'steady', public: true }] });

  const rand = prng(1234);
  const TOTAL = 4000;
  const deadline = Date.now() + 60_000;
  let sent = 0;
  let answered = 0;
  const sockets: TestSocket<{ type: string; code?: string }>[] = [];
  // Abusive connections get cut off after ~50 bad messages, so the fuzzer
  // opens new ones until it has sent TOTAL (bounded: 300 connections, 60 s).
  for (let c = 0; c < 300 && sent < TOTAL && Date.now() < deadline; c++) {
    // half unauthenticated agents, half clients
    const url = server.url.replace('http', 'ws') + (c % 2 ? '/ws/client' : '/ws/agent');
    const s = new TestSocket<{ type: string; code?: string }>(url);
    sockets.push(s);
    await s.open();
    if (c % 2 === 0) await s.next(); // the challenge
    s.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string };
      if (m.type === 'error') answered++;
    });
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      if (s.ws.readyState !== s.ws.OPEN) break;
      s.sendRaw(mutate(rand));
      sent++;
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
      if (sent % 400 === 0) bystander.send({ type: 'heartbeat' });
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  expect(sent).toBeGreaterThanOrEqual(TOTAL);
  console.log(
    `[fuzz] ${sent} hostile messages on ${sockets.length} connections, ${answered} error answers`,
  );
  // every bad message is answered with an error until a connection is cut off for abuse
  expect(answered).toBeGreaterThan(sent * 0.5);

  // The bystander agent is still connected and heart-beating.
  bystander.send({ type: 'heartbeat' });
  expect(await bystander.nextOf('heartbeat-ack', 5000)).toBeTruthy();
  // A brokering flow still works.
  const client = new FakeClient(server);
  await client.open();
  const accessToken = await signServiceAccessToken({
    privateKey: server.keys.accessPrivateKey,
    issuer: server.config.publicUrl,
    service: 'steady',
    subject: user.id,
    access: 'private',
  });
  client.send({ type: 'open', ref: 'after', service: 'steady', token: accessToken });
  const s = await client.nextOf('session');
  client.send({ type: 'offer', sessionId: s.sessionId, sdp: 'v=0' });
  expect(await bystander.nextOf('session')).toMatchObject({ sessionId: s.sessionId });
  expect((await fetch(server.url + '/healthz')).status).toBe(200);
  for (const x of [...sockets, bystander, client]) x.close();
}, 90_000);
