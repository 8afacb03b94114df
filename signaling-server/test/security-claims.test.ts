/**
 * Security: a claim is spent once. A claim token and its short /c/ link stop
 * working once the node is claimed, a node its owner removed cannot be
 * claimed again with an old token or link, and claim tokens expire on time.
 * Real server, real HTTP and WebSockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClaimToken, generateIdentity } from '@peerway/protocol/node';
import type { ServerToAgent } from '@peerway/protocol';
import { FakeAgent, api, makeUser, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer();
  server = ctx.server;
});
afterAll(() => ctx.stop());

type Welcome = Extract<ServerToAgent, { type: 'welcome' }>;

const claim = (token: string, claimToken: string) =>
  api(server, 'POST', '/api/nodes/claim', { token, body: { claimToken } });

/** An unclaimed agent that sends its claim token: the welcome carries the short link. */
async function unclaimedAgent(identity = generateIdentity(), at = Date.now()) {
  const agent = new FakeAgent(server, identity);
  const claimToken = createClaimToken(identity, 'box', at);
  const { reply } = await agent.handshake({ claimToken });
  return { agent, claimToken, welcome: reply as Welcome };
}

const shortLink = async (url: string) => {
  const res = await fetch(url.replace(server.config.publicUrl, server.url), { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
};

describe('claims', () => {
  it('a claim token is spent by its first use: later uses by anyone are refused', async () => {
    const a = await makeUser(server);
    const b = await makeUser(server);
    const node = generateIdentity();
    const t = createClaimToken(node, 'box', Date.now());
    expect((await claim(a.token, t)).status).toBe(200);
    const again = await claim(a.token, t);
    expect([again.status, again.json.error.code]).toEqual([409, 'conflict']);
    const other = await claim(b.token, t);
    expect([other.status, other.json.error.code]).toEqual([409, 'conflict']);
    expect((await api(server, 'GET', '/api/nodes', { token: b.token })).json.nodes).toEqual([]);
  });

  it('two claims racing with one token: exactly one wins', async () => {
    const users = await Promise.all([makeUser(server), makeUser(server), makeUser(server)]);
    const t = createClaimToken(generateIdentity(), 'box', Date.now());
    const results = await Promise.all(users.map((u) => claim(u.token, t)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
  });

  it('the short /c/ link leads to the add-node page until the node is claimed, then is gone', async () => {
    const owner = await makeUser(server);
    const { agent, claimToken, welcome } = await unclaimedAgent();
    expect(welcome.shortClaimUrl).toMatch(/\/c\/[A-Za-z0-9_-]+$/);
    const before = await shortLink(welcome.shortClaimUrl!);
    expect(before.status).toBe(302);
    expect(before.location).toContain('/add-node#claim=');
    const info = await api(
      server,
      'GET',
      `/api/nodes/claim-info?token=${encodeURIComponent(claimToken)}`,
    );
    expect(info.json).toMatchObject({ claimed: false, state: 'open' });

    expect((await claim(owner.token, claimToken)).status).toBe(200);
    const after = await shortLink(welcome.shortClaimUrl!);
    expect(after.status).toBe(410);
    expect(after.text).toMatch(/claimed already/);
    const infoAfter = await api(
      server,
      'GET',
      `/api/nodes/claim-info?token=${encodeURIComponent(claimToken)}`,
    );
    expect(infoAfter.json).toMatchObject({ claimed: true, state: 'claimed' });
    agent.close();
  });

  it("a token is spent once the node is claimed another way (the agent's access token)", async () => {
    const owner = await makeUser(server);
    const stranger = await makeUser(server);
    const identity = generateIdentity();
    const claimToken = createClaimToken(identity, 'box', Date.now());
    const agent = new FakeAgent(server, identity);
    await agent.handshake({ token: owner.token, claimToken });
    const r = await claim(stranger.token, claimToken);
    expect([r.status, r.json.error.code]).toEqual([409, 'conflict']);
    agent.close();
  });

  it('a node its owner removed cannot be claimed again with an old token or link; a new one works', async () => {
    const owner = await makeUser(server);
    const thief = await makeUser(server);
    const identity = generateIdentity();
    const issuedAt = Date.now() - 5_000;
    const { agent, claimToken, welcome } = await unclaimedAgent(identity, issuedAt);
    // A second token the node printed earlier, never used: it must die with the removal too.
    const unused = createClaimToken(identity, 'box', issuedAt);
    expect((await claim(owner.token, claimToken)).status).toBe(200);
    const removed = await api(server, 'DELETE', `/api/nodes/${identity.shortId}`, {
      token: owner.token,
    });
    expect(removed.status).toBe(200);
    expect((await agent.closed).code).toBe(4011);

    for (const t of [claimToken, unused]) {
      for (const who of [owner, thief]) {
        const r = await claim(who.token, t);
        expect([r.status, r.json.error.code]).toEqual([410, 'expired']);
      }
    }
    expect((await shortLink(welcome.shortClaimUrl!)).status).toBe(410);
    // The agent, started again, prints a new link; that one claims it.
    const fresh = createClaimToken(identity, 'box', Date.now() + 1000);
    expect((await claim(owner.token, fresh)).status).toBe(200);
  });

  it('claim tokens expire on time, and one signed to live longer than a day is refused', async () => {
    const u = await makeUser(server);
    const short = createClaimToken(generateIdentity(), 'box', Date.now(), 1);
    await new Promise((r) => setTimeout(r, 1100));
    const late = await claim(u.token, short);
    expect([late.status, late.json.error.code]).toEqual([410, 'expired']);
    const forever = createClaimToken(generateIdentity(), 'box', Date.now(), 365 * 86_400);
    const r = await claim(u.token, forever);
    expect([r.status, r.json.error.message]).toEqual([400, expect.stringMatching(/24 h at most/)]);
  });

  it('an agent that presents a spent token gets no new short link', async () => {
    const owner = await makeUser(server);
    const identity = generateIdentity();
    const t = createClaimToken(identity, 'box', Date.now());
    expect((await claim(owner.token, t)).status).toBe(200);
    const agent = new FakeAgent(server, identity);
    const { reply } = await agent.handshake({ claimToken: t });
    expect(reply).toMatchObject({ type: 'welcome', claimed: true });
    expect((reply as Welcome).shortClaimUrl).toBeUndefined();
    agent.close();
  });
});
