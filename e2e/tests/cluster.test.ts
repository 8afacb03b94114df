/**
 * Two server instances and Redis as real processes behind one URL: the agent
 * on one instance, the browser on the other, the page loads; kill -9 the
 * agent's instance: the agent reappears online through the other, the open
 * page never stops (its bytes never went through the server), and nothing
 * in the store is lost.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, screenshot } from '../support/stack';
import { ClusterStack, getJson } from '../support/cluster';
import { startReplicaApp } from '../fixtures/replica-app';

const stack = new ClusterStack();
let port = 0;
let admin = '';
let ownerToken = '';
beforeAll(async () => {
  const app = await startReplicaApp('home');
  port = app.port;
  stack.onStop(() => app.close());
  await stack.start();
  admin = (await stack.user(true)).token;
  ownerToken = (await stack.user()).token;
});
afterAll(() => stack.stop());

it('agent on A, browser on B; A killed: the agent is back through B and the page never stops', async () => {
  const [A, B] = stack.instances as [(typeof stack.instances)[0], (typeof stack.instances)[0]];
  stack.route(0);
  const agent = await stack.agent(ownerToken, [`home=127.0.0.1:${port},public`]);
  expect((await getJson(A.url, '/api/admin/signaling', admin)).agentsConnected).toBe(1);
  expect((await getJson(B.url, '/api/admin/signaling', admin)).agentsConnected).toBe(0);

  stack.route(1);
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('home', '/'));
  const app = Stack.app(page);
  await expect
    .poll(() => app.locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^home:\d+$/);
  // The session was brokered by B, to the agent A holds.
  const onB = await getJson(B.url, '/api/admin/signaling', admin);
  expect(
    onB.recent.some(
      (s: { service: string; setupMs: number | null }) =>
        s.service === 'home' && s.setupMs !== null,
    ),
  ).toBe(true);
  expect(onB.instance.instances).toBe(2);

  const before = {
    users: (await getJson(B.url, '/api/admin/users', admin)).users.length,
    nodes: await getJson(B.url, '/api/nodes', ownerToken),
    services: await getJson(B.url, '/api/services', ownerToken),
  };

  await A.proc.stop('SIGKILL');
  const killedAt = Date.now();
  const answersAtKill = await app.locator('#now').textContent();

  // The agent reconnects through the balancer, to B, and is online again.
  await expect
    .poll(async () => (await getJson(B.url, '/api/admin/signaling', admin)).agentsConnected, {
      timeout: 30_000,
      interval: 100,
    })
    .toBe(1);
  await expect
    .poll(async () => (await getJson(B.url, '/api/nodes', ownerToken)).nodes[0].online, {
      timeout: 10_000,
      interval: 100,
    })
    .toBe(true);
  console.log(
    `[cluster] agent online through the other instance ${((Date.now() - killedAt) / 1000).toFixed(1)} s after kill -9 of its instance`,
  );
  expect(agent.out).toMatch(/Connected to .* as node/);

  // The page kept going: the data channel never depended on the server.
  await expect
    .poll(async () => (await app.locator('#now').textContent()) !== answersAtKill, {
      timeout: 5000,
    })
    .toBe(true);
  expect(Number(await app.locator('#errors').textContent())).toBe(0);

  // Nothing in the store was lost.
  expect((await getJson(B.url, '/api/admin/users', admin)).users.length).toBe(before.users);
  const nodes = await getJson(B.url, '/api/nodes', ownerToken);
  expect(nodes.nodes.map((n: { id: string }) => n.id)).toEqual(
    before.nodes.nodes.map((n: { id: string }) => n.id),
  );
  expect(await getJson(B.url, '/api/services', ownerToken)).toEqual(before.services);

  // A new page, brokered entirely by B now, loads too.
  const fresh = await (await stack.context()).newPage();
  await fresh.goto(stack.serviceUrl('home', '/'));
  await expect
    .poll(() => Stack.app(fresh).locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^home:\d+$/);
  await screenshot(fresh, 'cluster-after-instance-kill');
}, 120_000);
