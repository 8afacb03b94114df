/** Agent and client signaling over real WebSockets against a real server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, signChallenge, signServiceAccessToken } from '@peerway/protocol/node';
import type { ServerToAgent } from '@peerway/protocol';
import {
  FakeAgent,
  FakeClient,
  ManualClock,
  api,
  makeUser,
  signalSession,
  withServer,
} from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer();
  server = ctx.server;
});
afterAll(() => ctx.stop());

describe('agent handshake', () => {
  it('accepts a good proof and welcomes the node with the server key', async () => {
    const a = new FakeAgent(server);
    const { reply } = await a.handshake();
    expect(reply.type).toBe('welcome');
    const w = reply as Extract<ServerToAgent, { type: 'welcome' }>;
    expect(w.shortId).toBe(a.identity.shortId);
    expect(w.claimed).toBe(false);
    expect(w.serverKey).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(w.serverKey).not.toHaveProperty('d');
    a.close();
  });

  it('refuses a forged signature', async () => {
    const a = new FakeAgent(server);
    await a.open();
    const ch = (await a.next()) as Extract<ServerToAgent, { type: 'challenge' }>;
    const other = generateIdentity();
    const ts = Date.now();
    a.send({
      type: 'auth',
      nodeId: a.identity.nodeId,
      timestamp: ts,
      signature: signChallenge(other, ch.serverUrl, ch.nonce, ts),
      name: 'x',
      version: '1',
      services: [],
    });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'invalid_signature' });
    expect((await a.closed).code).toBe(4001);
  });

  it('refuses a proof replayed from another connection', async () => {
    const first = new FakeAgent(server);
    await first.open();
    const ch = (await first.next()) as Extract<ServerToAgent, { type: 'challenge' }>;
    const ts = Date.now();
    const stolen = signChallenge(first.identity, ch.serverUrl, ch.nonce, ts);
    first.close();
    const second = new FakeAgent(server, first.identity);
    await second.open();
    await second.next(); // its own, different challenge
    second.send({
      type: 'auth',
      nodeId: first.identity.nodeId,
      timestamp: ts,
      signature: stolen,
      name: 'x',
      version: '1',
      services: [],
    });
    expect(await second.next()).toMatchObject({ type: 'error', code: 'invalid_signature' });
    expect((await second.closed).code).toBe(4001);
  });

  it('refuses a proof made for another server, and a stale timestamp', async () => {
    const a = new FakeAgent(server);
    const { reply } = await a.handshake({}, 'https://other-server.example');
    expect(reply).toMatchObject({ type: 'error', code: 'invalid_signature' });
    const b = new FakeAgent(server);
    const r2 = await b.handshake({ timestamp: Date.now() - 10 * 60_000 });
    expect(r2.reply).toMatchObject({ type: 'error', code: 'expired' });
  });

  it('refuses anything but auth before the handshake', async () => {
    const a = new FakeAgent(server);
    await a.open();
    await a.next();
    a.send({ type: 'heartbeat' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'unauthorized' });
    a.close();
  });

  it('claims the node for the user whose token the agent presents, and routes its services', async () => {
    const { token, user } = await makeUser(server);
    const a = new FakeAgent(server);
    const { reply } = await a.handshake({ token, services: [{ name: 'blog', public: true }] });
    expect(reply).toMatchObject({
      type: 'welcome',
      claimed: true,
      owner: user.email,
      services: [
        { name: 'blog', accepted: true, url: `http://blog.localhost:${server.config.port}/` },
      ],
    });
    const nodes = await api(server, 'GET', '/api/nodes', { token });
    expect(nodes.json.nodes[0]).toMatchObject({
      shortId: a.identity.shortId,
      online: true,
      services: [{ name: 'blog', access: 'public' }],
    });
    // another user's node may not take the name
    const other = await makeUser(server);
    const b = new FakeAgent(server);
    const r2 = await b.handshake({
      token: other.token,
      services: [{ name: 'blog', public: true }],
    });
    expect(r2.reply).toMatchObject({ services: [{ name: 'blog', accepted: false }] });
    a.close();
    b.close();
  });

  it('an unclaimed node gets a short claim link; claiming over HTTP enables its services live', async () => {
    const { createClaimToken } = await import('@peerway/protocol/node');
    const a = new FakeAgent(server);
    const claimToken = createClaimToken(a.identity, 'attic', Date.now());
    const { reply } = await a.handshake({
      claimToken,
      services: [{ name: 'attic-wiki', public: false }],
    });
    const w = reply as Extract<ServerToAgent, { type: 'welcome' }>;
    expect(w.services[0]).toMatchObject({ accepted: false });
    expect(w.shortClaimUrl).toMatch(/\/c\/[A-Za-z0-9_-]+$/);
    const short = await fetch(server.url + new URL(w.shortClaimUrl!).pathname, {
      redirect: 'manual',
    });
    expect(short.status).toBe(302);
    expect(short.headers.get('location')).toBe(`/add-node#claim=${claimToken}`);
    const { token } = await makeUser(server);
    await api(server, 'POST', '/api/nodes/claim', { token, body: { claimToken } });
    expect(await a.nextOf('claimed')).toMatchObject({ type: 'claimed' });
    expect(await a.nextOf('services-ack')).toMatchObject({
      services: [{ name: 'attic-wiki', accepted: true }],
    });
    a.close();
  });
});

describe('removing a node', () => {
  it("closes the node's live connection (4011)", async () => {
    const { token } = await makeUser(server);
    const a = new FakeAgent(server);
    const { reply } = await a.handshake({ token });
    expect(reply).toMatchObject({ type: 'welcome', claimed: true });
    const r = await api(server, 'DELETE', `/api/nodes/${encodeURIComponent(a.identity.nodeId)}`, {
      token,
    });
    expect(r.status).toBe(200);
    expect((await a.closed).code).toBe(4011);
  });
});

describe('presence', () => {
  it('a node that stops heart-beating goes offline at the timeout (fake clock), lastSeen kept', async () => {
    const clock = new ManualClock();
    const local = await withServer({ presenceTimeoutMs: 30_000 }, { clock });
    try {
      const { token } = await makeUser(local.server);
      const a = new FakeAgent(local.server);
      await a.handshake({ token, services: [] });
      const online = async () =>
        (await api(local.server, 'GET', '/api/nodes', { token })).json.nodes[0];
      expect((await online()).online).toBe(true);
      for (let i = 0; i < 3; i++) {
        clock.advance(10_000);
        a.send({
          type: 'heartbeat',
          load: { sessions: 1, cpu: 0.1, rssBytes: 1e6, txBytesPerSec: 0, rxBytesPerSec: 0 },
        });
        expect(await a.nextOf('heartbeat-ack')).toBeTruthy();
      }
      const lastBeat = clock.t;
      expect((await online()).online).toBe(true);
      // The connection dies silently: no more heartbeats, the socket stays open.
      clock.advance(30_000 + 7_500);
      expect((await a.closed).code).toBe(4010);
      const n = await online();
      expect(n.online).toBe(false);
      expect(n.lastSeen).toBe(lastBeat);
    } finally {
      await local.stop();
    }
  });

  it('a second connection of the same node replaces the first', async () => {
    const a = new FakeAgent(server);
    await a.handshake();
    const b = new FakeAgent(server, a.identity);
    await b.handshake();
    expect((await a.closed).code).toBe(4009);
    b.close();
  });
});

describe('brokering', () => {
  async function setup(access: 'public' | 'private' = 'public') {
    const { token, user } = await makeUser(server);
    const name = `svc-${Math.random().toString(36).slice(2, 8)}`;
    const agent = new FakeAgent(server);
    await agent.handshake({ token, services: [{ name, public: access === 'public' }] });
    const accessToken = await signServiceAccessToken({
      privateKey: server.keys.accessPrivateKey,
      issuer: server.config.publicUrl,
      service: name,
      subject: user.id,
      access: 'private',
    });
    const client = new FakeClient(server);
    await client.open();
    return { agent, client, name, accessToken, token };
  }

  it('relays offer, answer and candidates, stamping the sender', async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'r1', service: name, token: accessToken });
    const session = await client.nextOf('session');
    expect(session).toMatchObject({ ref: 'r1', node: { shortId: agent.identity.shortId } });
    await signalSession(client, agent, session.sessionId, { service: name, token: accessToken });

    // Another client cannot signal into this session, nor can another agent.
    const intruder = new FakeClient(server);
    await intruder.open();
    intruder.send({ type: 'candidate', sessionId: session.sessionId, candidate: null });
    expect(await intruder.next()).toMatchObject({ type: 'error', code: 'not_found' });
    const rogue = new FakeAgent(server);
    await rogue.handshake();
    rogue.send({ type: 'answer', sessionId: session.sessionId, sdp: 'v=0 evil' });
    expect(await rogue.next()).toMatchObject({ type: 'error', code: 'not_found' });
    // the stats show the session and its setup time
    const stats = server.signaling.stats();
    expect(stats.recent.find((r) => r.id === session.sessionId)?.setupMs).toBeGreaterThanOrEqual(0);
    for (const x of [agent, client, intruder, rogue]) x.close();
  });

  it('holds candidates a client sends before its offer, and delivers them after it', async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'early', service: name, token: accessToken });
    const session = await client.nextOf('session');
    const c = { candidate: 'candidate:1 1 udp 1 203.0.113.21 4000 typ srflx', sdpMid: '0' };
    client.send({ type: 'candidate', sessionId: session.sessionId, candidate: c });
    client.send({ type: 'offer', sessionId: session.sessionId, sdp: 'v=0 offer' });
    // The agent hears the offer first, then the candidate.
    const first = await agent.next();
    const firstSession = first.type === 'session' ? first : await agent.nextOf('session');
    expect(firstSession.sessionId).toBe(session.sessionId);
    expect(await agent.next()).toEqual({
      type: 'candidate',
      sessionId: session.sessionId,
      candidate: c,
    });
    // Bounded: a flood before the offer is refused, not stored.
    client.send({ type: 'open', ref: 'flood', service: name, token: accessToken });
    const s2 = await client.nextOf('session');
    for (let i = 0; i < 40; i++)
      client.send({ type: 'candidate', sessionId: s2.sessionId, candidate: c });
    expect(await client.nextOf('error')).toMatchObject({ code: 'rate_limited' });
    agent.close();
    client.close();
  });

  it('passes an offer that came with the request to the node at once, and only once', async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'o1', service: name, token: accessToken, offer: 'v=0 early' });
    const session = await client.nextOf('session');
    expect(await agent.nextOf('session')).toMatchObject({
      sessionId: session.sessionId,
      service: name,
      token: accessToken,
      offer: 'v=0 early',
    });
    // candidates now go straight through (nothing is held)
    const c = { candidate: 'candidate:1 1 udp 1 192.0.2.9 5000 typ host', sdpMid: '0' };
    client.send({ type: 'candidate', sessionId: session.sessionId, candidate: c });
    expect(await agent.next()).toEqual({
      type: 'candidate',
      sessionId: session.sessionId,
      candidate: c,
    });
    // a second offer for the session is refused, and the session lives on
    client.send({ type: 'offer', sessionId: session.sessionId, sdp: 'v=0 again' });
    expect(await client.nextOf('error')).toMatchObject({ code: 'bad_message' });
    agent.send({ type: 'answer', sessionId: session.sessionId, sdp: 'v=0 answer' });
    expect(await client.nextOf('answer')).toMatchObject({ sdp: 'v=0 answer' });
    agent.close();
    client.close();
  });

  it("a collaborator's node serves as a replica while the owner grants them the right to serve", async () => {
    const { agent: mine, client, name, accessToken, token } = await setup();
    const collaborator = await makeUser(server);
    expect(
      (
        await api(server, 'POST', `/api/services/${name}/servers`, {
          token,
          body: { email: collaborator.user.email },
        })
      ).status,
    ).toBe(201);
    const theirs = new FakeAgent(server);
    const { reply } = await theirs.handshake({
      token: collaborator.token,
      services: [{ name, public: true }],
    });
    expect((reply as Extract<ServerToAgent, { type: 'welcome' }>).services[0]).toMatchObject({
      accepted: true,
    });
    // A stranger's node may not serve it.
    const stranger = new FakeAgent(server);
    const { reply: r2 } = await stranger.handshake({
      token: (await makeUser(server)).token,
      services: [{ name, public: true }],
    });
    expect((r2 as Extract<ServerToAgent, { type: 'welcome' }>).services[0]).toMatchObject({
      accepted: false,
    });
    const pick = async (ref: string) => {
      client.send({
        type: 'open',
        ref,
        service: name,
        token: accessToken,
        avoid: [mine.identity.shortId],
      });
      return (await client.nextOf('session')).node.shortId;
    };
    expect(await pick('shared')).toBe(theirs.identity.shortId);
    // Taking the grant back stops that replica at once.
    await api(server, 'DELETE', `/api/services/${name}/servers/${collaborator.user.email}`, {
      token,
    });
    expect(await pick('unshared')).toBe(mine.identity.shortId);
    for (const x of [mine, theirs, stranger, client]) x.close();
  });

  it('refuses bad tokens, unknown and offline services with clear errors', async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'a', service: name, token: 'not-a-jwt' });
    expect(await client.nextOf('session-error')).toMatchObject({ ref: 'a', code: 'unauthorized' });
    client.send({ type: 'open', ref: 'b', service: 'nothing-here', token: accessToken });
    expect(await client.nextOf('session-error')).toMatchObject({ ref: 'b', code: 'forbidden' });
    const unknownTok = await signServiceAccessToken({
      privateKey: server.keys.accessPrivateKey,
      issuer: server.config.publicUrl,
      service: 'nothing-here',
      subject: 'x',
      access: 'private',
    });
    client.send({ type: 'open', ref: 'c', service: 'nothing-here', token: unknownTok });
    expect(await client.nextOf('session-error')).toMatchObject({
      ref: 'c',
      code: 'service_unknown',
    });
    agent.close();
    await agent.closed;
    await new Promise((r) => setTimeout(r, 50));
    client.send({ type: 'open', ref: 'd', service: name, token: accessToken });
    const offline = await client.nextOf('session-error');
    expect(offline).toMatchObject({ ref: 'd', code: 'service_offline' });
    expect(offline.message).toMatch(/offline/);
    client.close();
  });

  it('an agent may speak for many sessions at once; a client is held to the client rate', async () => {
    const { agent, client } = await setup();
    // 400 at once: twice the client burst, within the agent's own bucket
    for (let i = 0; i < 400; i++) agent.send({ type: 'heartbeat' });
    const kinds = new Set<string>();
    for (let i = 0; i < 400; i++) kinds.add((await agent.next()).type);
    expect([...kinds]).toEqual(['heartbeat-ack']);
    for (let i = 0; i < 400; i++) client.send({ type: 'ping' });
    expect(await client.nextOf('error')).toMatchObject({ code: 'rate_limited' });
    agent.close();
    client.close();
  });

  it("takes a node's late reports on a session its page has left without an error", async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'late', service: name, token: accessToken });
    const s = await client.nextOf('session');
    await signalSession(client, agent, s.sessionId, { service: name, token: accessToken });
    client.close();
    // the session ends with its page (bounded wait)
    for (let i = 0; i < 100; i++) {
      if (server.signaling.stats().recent.find((r) => r.id === s.sessionId)?.closedAt) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(server.signaling.stats().recent.find((r) => r.id === s.sessionId)?.closedAt).toBeTypeOf(
      'number',
    );
    const sessionId = s.sessionId;
    agent.send({ type: 'candidate', sessionId, candidate: null });
    agent.send({
      type: 'session-stats',
      sessionId,
      stats: {
        localCandidateType: 'host',
        remoteCandidateType: 'host',
        protocol: 'udp',
        setupMs: 9,
      },
    });
    agent.send({ type: 'session-closed', sessionId });
    // an answer for it is still refused (a node does not answer sessions it was not given)
    agent.send({ type: 'answer', sessionId, sdp: 'v=0' });
    // An end mark: a second auth is refused too, and later than the session
    // messages before it (its refusal takes more turns: auth is async), so
    // every error those could draw has arrived once this one has.
    agent.send({
      type: 'auth',
      nodeId: agent.identity.nodeId,
      timestamp: Date.now(),
      signature: 'A'.repeat(86),
      name: 'again',
    } as never);
    const errors: { type: string; code?: string; message?: string }[] = [];
    for (;;) {
      const m = await agent.next();
      if (m.type !== 'error') continue;
      if (m.message === 'already authenticated') break;
      errors.push(m);
    }
    expect(errors).toEqual([
      { type: 'error', code: 'not_found', message: 'no such session on this connection' },
    ]);
    agent.close();
  });

  it('a session the agent rejects reaches the client as an error', async () => {
    const { agent, client, name, accessToken } = await setup();
    client.send({ type: 'open', ref: 'x', service: name, token: accessToken });
    const s = await client.nextOf('session');
    client.send({ type: 'offer', sessionId: s.sessionId, sdp: 'v=0' });
    await agent.nextOf('session');
    agent.send({
      type: 'session-reject',
      sessionId: s.sessionId,
      code: 'expired',
      message: 'token expired',
    });
    expect(await client.nextOf('session-error')).toMatchObject({
      sessionId: s.sessionId,
      code: 'expired',
    });
    expect(server.signaling.stats().failuresByReason.expired).toBeGreaterThanOrEqual(1);
    agent.close();
    client.close();
  });
});
