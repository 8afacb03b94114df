/**
 * Security: permission to view is never permission to serve, and taking a
 * right back ends the sessions that relied on it. Real server, real
 * WebSockets (fake agents and clients speak the real protocol).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signServiceAccessToken } from '@peerway/protocol/node';
import type { ServerToAgent } from '@peerway/protocol';
import { FakeAgent, FakeClient, api, makeUser, signalSession, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer();
  server = ctx.server;
});
afterAll(() => ctx.stop());

type Welcome = Extract<ServerToAgent, { type: 'welcome' }>;
const svcName = () => `svc-${Math.random().toString(36).slice(2, 8)}`;

/** A token as the server mints it: for a user's own right (private) or for anyone (public). */
const tokenFor = (service: string, subject: string, access: 'public' | 'private') =>
  signServiceAccessToken({
    privateKey: server.keys.accessPrivateKey,
    issuer: server.config.publicUrl,
    service,
    subject,
    access,
  });

async function ownerWithService(isPublic: boolean) {
  const owner = await makeUser(server);
  const name = svcName();
  const agent = new FakeAgent(server);
  const { reply } = await agent.handshake({
    token: owner.token,
    services: [{ name, public: isPublic }],
  });
  expect((reply as Welcome).services[0]).toMatchObject({ accepted: true });
  return { owner, name, agent };
}

async function openSession(service: string, token: string) {
  const client = new FakeClient(server);
  await client.open();
  client.send({ type: 'open', ref: 'r', service, token });
  return { client, reply: await client.next() };
}

describe('serving rights', () => {
  it("a user the service is shared with (to view) cannot serve it: their node's announcement is refused and it gets no visitors", async () => {
    const { owner, name, agent: ownersNode } = await ownerWithService(false);
    const viewer = await makeUser(server);
    await api(server, 'POST', `/api/services/${name}/shares`, {
      token: owner.token,
      body: { email: viewer.user.email },
    });
    await api(server, 'PUT', `/api/services/${name}/access`, {
      token: owner.token,
      body: { access: 'shared' },
    });
    const viewersNode = new FakeAgent(server);
    const { reply } = await viewersNode.handshake({
      token: viewer.token,
      services: [{ name, public: false }],
    });
    expect((reply as Welcome).services[0]).toMatchObject({
      accepted: false,
      reason: expect.stringMatching(/belongs to another account/),
    });
    // Even asked to avoid the owner's node, every visitor (the owner's own token included) goes there.
    for (const subject of [owner.user.id, viewer.user.id]) {
      const client = new FakeClient(server);
      await client.open();
      client.send({
        type: 'open',
        ref: 'x',
        service: name,
        token: await tokenFor(name, subject, 'private'),
        avoid: [ownersNode.identity.shortId],
      });
      expect((await client.nextOf('session')).node.shortId).toBe(ownersNode.identity.shortId);
      client.close();
    }
    // With the owner's node gone, nobody else serves it.
    ownersNode.close();
    await ownersNode.closed;
    const { client, reply: r } = await openSession(
      name,
      await tokenFor(name, owner.user.id, 'private'),
    );
    expect(r).toMatchObject({ type: 'session-error', code: 'service_offline' });
    for (const x of [viewersNode, client]) x.close();
  });

  it("a stranger who claims a name and shares it with a victim cannot make the victim's node serve anonymous visitors", async () => {
    const stranger = await makeUser(server);
    const victim = await makeUser(server);
    const name = svcName();
    // The stranger reserves the name (their node announces it once, public)...
    const strangersNode = new FakeAgent(server);
    await strangersNode.handshake({ token: stranger.token, services: [{ name, public: true }] });
    strangersNode.close();
    await strangersNode.closed;
    // ...and shares it with the victim, whose node happens to declare that name.
    await api(server, 'POST', `/api/services/${name}/shares`, {
      token: stranger.token,
      body: { email: victim.user.email },
    });
    const victimsNode = new FakeAgent(server);
    const { reply } = await victimsNode.handshake({
      token: victim.token,
      services: [{ name, public: false }],
    });
    expect((reply as Welcome).services[0]).toMatchObject({ accepted: false });
    const { client, reply: r } = await openSession(
      name,
      await tokenFor(name, 'anonymous', 'public'),
    );
    expect(r).toMatchObject({ type: 'session-error', code: 'service_offline' });
    // The victim's node never heard of a session.
    victimsNode.send({ type: 'heartbeat' });
    expect((await victimsNode.next()).type).toBe('heartbeat-ack');
    for (const x of [victimsNode, client]) x.close();
  });

  it('a serving grant (separate from sharing) lets a collaborator serve; taking it back ends their live sessions on both ends', async () => {
    const { owner, name, agent: ownersNode } = await ownerWithService(true);
    const helper = await makeUser(server);
    const grant = await api(server, 'POST', `/api/services/${name}/servers`, {
      token: owner.token,
      body: { email: helper.user.email },
    });
    expect(grant.status).toBe(201);
    const services = await api(server, 'GET', '/api/services', { token: owner.token });
    expect(services.json.services.find((s: { name: string }) => s.name === name)).toMatchObject({
      servedBy: [helper.user.email],
      sharedWith: [],
    });
    const helpersNode = new FakeAgent(server);
    const { reply } = await helpersNode.handshake({
      token: helper.token,
      services: [{ name, public: true }],
    });
    expect((reply as Welcome).services[0]).toMatchObject({ accepted: true });
    const token = await tokenFor(name, 'anonymous', 'public');
    const client = new FakeClient(server);
    await client.open();
    client.send({
      type: 'open',
      ref: 'a',
      service: name,
      token,
      avoid: [ownersNode.identity.shortId],
    });
    const s = await client.nextOf('session');
    expect(s.node.shortId).toBe(helpersNode.identity.shortId);
    await signalSession(client, helpersNode, s.sessionId, { service: name, token });

    await api(server, 'DELETE', `/api/services/${name}/servers/${helper.user.email}`, {
      token: owner.token,
    });
    // the helper's node is no longer a replica, and its live session ends on both ends
    const heard = [await helpersNode.next(), await helpersNode.next()];
    expect(heard).toEqual([
      expect.objectContaining({
        type: 'services-ack',
        services: [expect.objectContaining({ accepted: false })],
      }),
      expect.objectContaining({ type: 'session-close', sessionId: s.sessionId }),
    ]);
    expect(await client.nextOf('session-error')).toMatchObject({
      sessionId: s.sessionId,
      code: 'forbidden',
    });
    client.send({
      type: 'open',
      ref: 'b',
      service: name,
      token,
      avoid: [ownersNode.identity.shortId],
    });
    expect((await client.nextOf('session')).node.shortId).toBe(ownersNode.identity.shortId);
    // a stranger may not grant or revoke on someone else's service
    const other = await makeUser(server);
    const r = await api(server, 'POST', `/api/services/${name}/servers`, {
      token: other.token,
      body: { email: other.user.email },
    });
    expect(r.status).toBe(404);
    for (const x of [ownersNode, helpersNode, client]) x.close();
  });
});

describe('revoking access takes effect at once', () => {
  it('making a public service private closes the anonymous sessions and brokers no new one with the old token', async () => {
    const { owner, name, agent } = await ownerWithService(true);
    const anon = await tokenFor(name, 'anonymous', 'public');
    const { client, reply } = await openSession(name, anon);
    expect(reply.type).toBe('session');
    const sessionId = (reply as { sessionId: string }).sessionId;
    await signalSession(client, agent, sessionId, { service: name, token: anon });
    const own = await openSession(name, await tokenFor(name, owner.user.id, 'private'));
    expect(own.reply.type).toBe('session');

    await api(server, 'PUT', `/api/services/${name}/access`, {
      token: owner.token,
      body: { access: 'private' },
    });
    expect(await agent.nextOf('session-close')).toMatchObject({ sessionId });
    expect(await client.nextOf('session-error')).toMatchObject({ sessionId, code: 'unauthorized' });
    // the token is still unexpired, but the right is gone
    client.send({ type: 'open', ref: 'again', service: name, token: anon });
    expect(await client.nextOf('session-error')).toMatchObject({
      ref: 'again',
      code: 'unauthorized',
    });
    // the owner's session lives on
    own.client.send({ type: 'ping' });
    expect((await own.client.next()).type).toBe('pong');
    for (const x of [agent, client, own.client]) x.close();
  });

  it("removing a share closes that user's session; removing the node closes everyone's", async () => {
    const { owner, name, agent } = await ownerWithService(false);
    const friend = await makeUser(server);
    await api(server, 'POST', `/api/services/${name}/shares`, {
      token: owner.token,
      body: { email: friend.user.email },
    });
    await api(server, 'PUT', `/api/services/${name}/access`, {
      token: owner.token,
      body: { access: 'shared' },
    });
    const friends = await openSession(name, await tokenFor(name, friend.user.id, 'private'));
    expect(friends.reply.type).toBe('session');
    const owners = await openSession(name, await tokenFor(name, owner.user.id, 'private'));
    expect(owners.reply.type).toBe('session');

    await api(server, 'DELETE', `/api/services/${name}/shares/${friend.user.email}`, {
      token: owner.token,
    });
    expect(await friends.client.nextOf('session-error')).toMatchObject({ code: 'forbidden' });

    const node = await server.store.getNode(agent.identity.nodeId);
    const removed = await api(server, 'DELETE', `/api/nodes/${node!.shortId}`, {
      token: owner.token,
    });
    expect(removed.status).toBe(200);
    expect(await owners.client.nextOf('session-error')).toMatchObject({ code: 'service_offline' });
    expect((await agent.closed).code).toBe(4011);
    for (const x of [friends.client, owners.client]) x.close();
  });
});

describe('a node that declared a service private', () => {
  it('gets no visitor with a public token: they go to a replica that serves it publicly, or are told to sign in', async () => {
    const owner = await makeUser(server);
    const name = svcName();
    const privateNode = new FakeAgent(server);
    await privateNode.handshake({ token: owner.token, services: [{ name, public: false }] });
    // the owner opens it to anyone on the dashboard, but this node keeps its own setting
    await api(server, 'PUT', `/api/services/${name}/access`, {
      token: owner.token,
      body: { access: 'public' },
    });
    const anon = await tokenFor(name, 'anonymous', 'public');
    const alone = await openSession(name, anon);
    expect(alone.reply).toMatchObject({
      type: 'session-error',
      code: 'unauthorized',
      message: expect.stringMatching(/served privately/),
    });
    const publicNode = new FakeAgent(server);
    await publicNode.handshake({ token: owner.token, services: [{ name, public: true }] });
    for (let i = 0; i < 3; i++) {
      const { client, reply } = await openSession(name, anon);
      expect(reply).toMatchObject({
        type: 'session',
        node: { shortId: publicNode.identity.shortId },
      });
      client.close();
    }
    // the owner's own token may go to either
    const own = await openSession(name, await tokenFor(name, owner.user.id, 'private'));
    expect(own.reply.type).toBe('session');
    for (const x of [privateNode, publicNode, alone.client, own.client]) x.close();
  });
});
