/**
 * Two server instances sharing a real redis-server: agents on one, clients
 * on the other, signaling routed over Redis pub/sub; presence, replacement,
 * load-aware replica choice, draining and node changes across instances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClaimToken, signServiceAccessToken } from '@peerway/protocol/node';
import type { ServerToAgent } from '@peerway/protocol';
import {
  FakeAgent,
  FakeClient,
  api,
  makeUser,
  signalSession,
  startRedis,
  withServer,
} from './helpers';
import type { PeerwayServer } from '../src/server';
import { until as untilTruthy } from './cluster-fixtures';

let redis: Awaited<ReturnType<typeof startRedis>>;
let a: Awaited<ReturnType<typeof withServer>>;
let b: Awaited<ReturnType<typeof withServer>>;
let A: PeerwayServer;
let B: PeerwayServer;
// One URL in front of both instances, as behind a load balancer.
const publicUrl = 'http://gw.test:8080';

beforeAll(async () => {
  redis = await startRedis();
  a = await withServer({ redisUrl: redis.url(3), publicUrl });
  b = await withServer({ redisUrl: redis.url(3), publicUrl });
  A = a.server;
  B = b.server;
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

/** The shared poll (signaling-server/test/cluster-fixtures.ts), with this file's patience. */
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 5000) => untilTruthy(fn, what, ms);

/** A user, a service name, and an access token for it. */
async function owner(server: PeerwayServer) {
  const { user, token } = await makeUser(server);
  const name = `svc-${Math.random().toString(36).slice(2, 8)}`;
  const accessToken = await signServiceAccessToken({
    privateKey: server.keys.accessPrivateKey,
    issuer: publicUrl,
    service: name,
    subject: user.id,
    access: 'private',
  });
  return { user, token, name, accessToken };
}

async function agentOn(server: PeerwayServer, token: string, name: string) {
  const agent = new FakeAgent(server);
  const { reply } = await agent.handshake({ token, services: [{ name, public: true }] });
  expect(reply).toMatchObject({ type: 'welcome', claimed: true });
  return agent;
}

async function clientOn(server: PeerwayServer) {
  const c = new FakeClient(server);
  await c.open();
  return c;
}

describe('two instances, one Redis', () => {
  it('share the server keys and see each other', async () => {
    expect(B.keys.accessPublicJwk).toEqual(A.keys.accessPublicJwk);
    await until(() => A.signaling.stats().instance.instances === 2, 'instances to meet');
    expect(B.signaling.stats().instance.id).not.toBe(A.signaling.stats().instance.id);
    // Each sees the other's counts (from its beats): the admin view covers the cluster.
    const peer = await until(
      () => B.signaling.stats().instance.peers.find((p) => p.agents !== undefined),
      "A's counts on B",
    );
    expect(peer).toMatchObject({ id: A.signaling.stats().instance.id, agents: 0, clients: 0 });
    const metrics = await (await fetch(`${A.url}/metrics`)).text();
    expect(metrics).toMatch(/^peerway_cluster_instances 2$/m);
  });

  it('an agent on A and a client on B meet: offer, answer, candidates, stats, close', async () => {
    const o = await owner(A);
    const agent = await agentOn(A, o.token, o.name);
    // B's API shows the node online, though B does not hold its connection.
    const nodes = await until(async () => {
      const r = await api(B, 'GET', '/api/nodes', { token: o.token });
      return r.json.nodes?.[0]?.online ? r.json.nodes : null;
    }, 'the node online on B');
    expect(nodes[0].shortId).toBe(agent.identity.shortId);

    const client = await clientOn(B);
    client.send({ type: 'open', ref: 'r1', service: o.name, token: o.accessToken });
    const session = await client.nextOf('session');
    expect(session.node.shortId).toBe(agent.identity.shortId);
    await signalSession(client, agent, session.sessionId, {
      service: o.name,
      token: o.accessToken,
    });
    agent.send({ type: 'candidate', sessionId: session.sessionId, candidate: null });
    expect(await client.nextOf('candidate')).toMatchObject({ candidate: null });
    agent.send({
      type: 'session-stats',
      sessionId: session.sessionId,
      stats: {
        localCandidateType: 'host',
        remoteCandidateType: 'host',
        protocol: 'udp',
        setupMs: 12,
      },
    });
    const rec = await until(
      () => B.signaling.stats().recent.find((r) => r.id === session.sessionId && r.agent !== null),
      'agent stats on B',
    );
    expect(rec.setupMs).toBeGreaterThanOrEqual(0);

    // A rogue agent on A cannot answer for a session relayed to another node.
    const rogue = new FakeAgent(A);
    await rogue.handshake();
    rogue.send({ type: 'answer', sessionId: session.sessionId, sdp: 'v=0 evil' });
    expect(await rogue.next()).toMatchObject({ type: 'error', code: 'not_found' });

    client.send({ type: 'close', sessionId: session.sessionId });
    expect(await agent.nextOf('session-close')).toMatchObject({ sessionId: session.sessionId });
    for (const x of [agent, client, rogue]) x.close();
  });

  it("the node's agent dropping on A: B's client gets node-offline, an unanswered session fails", async () => {
    const o = await owner(A);
    const agent = await agentOn(A, o.token, o.name);
    const client = await clientOn(B);
    await until(() => B.signaling.presenceView.isOnline(agent.identity.nodeId), 'online on B');
    client.send({ type: 'open', ref: 'r1', service: o.name, token: o.accessToken });
    const answered = await client.nextOf('session');
    client.send({ type: 'offer', sessionId: answered.sessionId, sdp: 'v=0 offer' });
    await agent.nextOf('session');
    agent.send({ type: 'answer', sessionId: answered.sessionId, sdp: 'v=0 answer' });
    await client.nextOf('answer');
    client.send({ type: 'open', ref: 'r2', service: o.name, token: o.accessToken });
    const pending = await client.nextOf('session');

    agent.close();
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await client.next();
      if (m.type === 'node-offline') seen.push(`offline:${m.sessionId}`);
      if (m.type === 'session-error') seen.push(`error:${m.sessionId}:${m.code}`);
    }
    expect(seen.sort()).toEqual(
      [`offline:${answered.sessionId}`, `error:${pending.sessionId}:service_offline`].sort(),
    );
    await until(() => !B.signaling.presenceView.isOnline(agent.identity.nodeId), 'offline on B');
    client.close();
  });

  it('a node reconnecting through B replaces its connection on A', async () => {
    const o = await owner(A);
    const first = await agentOn(A, o.token, o.name);
    const second = new FakeAgent(B, first.identity);
    await second.handshake({ token: o.token, services: [{ name: o.name, public: true }] });
    expect((await first.closed).code).toBe(4009);
    // Still online (through B), for both instances.
    await new Promise((r) => setTimeout(r, 100));
    expect(A.signaling.presenceView.isOnline(first.identity.nodeId)).toBe(true);
    expect(B.signaling.presenceView.isOnline(first.identity.nodeId)).toBe(true);
    second.close();
  });

  it('new sessions go to the least-loaded replica across instances; draining ones get none', async () => {
    const o = await owner(A);
    const busy = await agentOn(A, o.token, o.name);
    const idle = await agentOn(B, o.token, o.name);
    const load = (sessions: number) => ({
      sessions,
      cpu: 0.1,
      rssBytes: 1e8,
      txBytesPerSec: 0,
      rxBytesPerSec: 0,
    });
    busy.send({ type: 'heartbeat', load: load(4) });
    idle.send({ type: 'heartbeat', load: load(0) });
    await busy.nextOf('heartbeat-ack');
    await idle.nextOf('heartbeat-ack');
    const client = await clientOn(A);
    const pick = async (ref: string) => {
      client.send({ type: 'open', ref, service: o.name, token: o.accessToken });
      const m = await client.next();
      return m.type === 'session' ? m.node.shortId : `${m.type}:${(m as { code?: string }).code}`;
    };
    // Wait until A has heard B's load report.
    await until(
      () => A.signaling.cluster.remoteAgent(idle.identity.nodeId)?.load?.sessions === 0,
      "the idle replica's load on A",
    );
    const picks: string[] = [];
    for (let i = 0; i < 8; i++) picks.push(await pick(`p${i}`));
    const onIdle = picks.filter((p) => p === idle.identity.shortId).length;
    const onBusy = picks.filter((p) => p === busy.identity.shortId).length;
    // 4 reported on busy, 0 on idle: the first four go to idle, then they alternate.
    expect(picks.slice(0, 4)).toEqual(Array(4).fill(idle.identity.shortId));
    expect(onIdle).toBe(6);
    expect(onBusy).toBe(2);

    // The idle one drains: everything goes to the busy one now.
    idle.send({ type: 'drain', draining: true });
    await until(() => A.signaling.cluster.remoteAgent(idle.identity.nodeId)?.draining, 'drain');
    for (let i = 0; i < 3; i++) expect(await pick(`d${i}`)).toBe(busy.identity.shortId);
    // Both draining: no replica takes new sessions.
    busy.send({ type: 'drain', draining: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(await pick('none')).toBe('session-error:service_offline');
    for (const x of [busy, idle, client]) x.close();
  });

  it('a claim made on B reaches the agent connected to A', async () => {
    const { token } = await makeUser(A);
    const agent = new FakeAgent(A);
    const claimToken = createClaimToken(agent.identity, 'attic', Date.now());
    const { reply } = await agent.handshake({ claimToken, services: [] });
    expect(reply).toMatchObject({ type: 'welcome', claimed: false });
    const r = await api(B, 'POST', '/api/nodes/claim', { token, body: { claimToken } });
    expect(r.status).toBe(200);
    expect(await agent.nextOf('claimed')).toMatchObject({ type: 'claimed' });
    agent.close();
  });

  it('an instance shutting down: its agents are offline on the other at once, and back when they reconnect there', async () => {
    const c = await withServer({ redisUrl: redis.url(3), publicUrl });
    const o = await owner(c.server);
    const agent = await agentOn(c.server, o.token, o.name);
    await until(() => B.signaling.presenceView.isOnline(agent.identity.nodeId), 'online on B');
    await c.stop();
    const closed = await agent.closed;
    expect(closed.code).toBe(1001);
    await until(() => !B.signaling.presenceView.isOnline(agent.identity.nodeId), 'offline on B');
    const again = new FakeAgent(B, agent.identity);
    const { reply } = await again.handshake({ services: [{ name: o.name, public: true }] });
    expect((reply as Extract<ServerToAgent, { type: 'welcome' }>).claimed).toBe(true);
    expect(
      A.signaling.presenceView.isOnline(agent.identity.nodeId) ||
        (await until(
          () => A.signaling.presenceView.isOnline(agent.identity.nodeId),
          'online on A through B',
        )),
    ).toBe(true);
    again.close();
  });
});
