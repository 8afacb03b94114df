/**
 * Security: bounded storage from anonymous peers. Anyone may make a key and
 * connect; the rows of nodes nobody claims expire and are purged by the
 * server on its own, and the admin node list does not grow with them.
 * Real server (its clock driven by hand), real agent WebSockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent, ManualClock, api, makeUser, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';
import { PURGE_INTERVAL_MS, UNCLAIMED_NODE_TTL_MS } from '../src/nodes/purge';

const clock = new ManualClock();
let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  ctx = await withServer({}, { clock });
  server = ctx.server;
});
afterAll(() => ctx.stop());

const STRANGERS = 60;

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('unclaimed nodes', () => {
  it('expire and are purged by the server; the admin list shows claimed and online ones, and counts the rest', async () => {
    const admin = await makeUser(server, true);
    const owner = await makeUser(server);
    const mine = new FakeAgent(server);
    await mine.handshake({ token: owner.token });
    const strangers: FakeAgent[] = [];
    for (let i = 0; i < STRANGERS; i++) {
      const a = new FakeAgent(server);
      await a.handshake();
      strangers.push(a);
    }
    const online = strangers.pop()!; // stays connected
    for (const a of strangers) a.close();
    await Promise.all(strangers.map((a) => a.closed));
    expect(await server.store.countUnclaimedNodes()).toBe(STRANGERS);

    const view = await api(server, 'GET', '/api/admin/nodes', { token: admin.token });
    expect(view.status).toBe(200);
    expect(view.json.unclaimed).toBe(STRANGERS);
    expect(view.json.nodes.map((n: { shortId: string }) => n.shortId).sort()).toEqual(
      [mine.identity.shortId, online.identity.shortId].sort(),
    );
    const everything = await api(server, 'GET', '/api/admin/nodes?unclaimed=1', {
      token: admin.token,
    });
    expect(everything.json.nodes).toHaveLength(STRANGERS + 1);

    online.close();
    await online.closed;
    // A day later nothing is purged yet (a claim link may still be open)...
    clock.advance(24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await server.store.countUnclaimedNodes()).toBe(STRANGERS);
    // ...two days and an hour later, the server's own purge has run.
    // (time jumps here; one run at a time, so the run that counts is the next one due)
    clock.advance(UNCLAIMED_NODE_TTL_MS - 24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 100));
    clock.advance(PURGE_INTERVAL_MS);
    await until(async () => (await server.store.countUnclaimedNodes()) === 0);
    for (const a of [...strangers, online])
      expect(await server.store.getNode(a.identity.nodeId)).toBeNull();
    // the claimed node stays, however long it was away
    expect(await server.store.getNode(mine.identity.nodeId)).not.toBeNull();
    mine.close();
  });
});
