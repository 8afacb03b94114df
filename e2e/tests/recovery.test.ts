/** The agent is killed and restarted while the page is open: the page recovers without a reload. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, screenshot } from '../support/stack';
import { startClockApp } from '../fixtures/clock-app';

const stack = new Stack();
let port = 0;
let token = '';
beforeAll(async () => {
  const app = await startClockApp();
  port = app.port;
  stack.onStop(() => app.close());
  await stack.start();
  token = (await stack.user()).token;
});
afterAll(() => stack.stop());

it('recovers after kill -9 and restart of the agent', async () => {
  const agent = await stack.agent(token, [`clock=127.0.0.1:${port},public`]);
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('clock', '/'));
  const app = Stack.app(page);
  await expect
    .poll(() => app.locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^tick-\d+$/);
  await agent.stop('SIGKILL');
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  const before = await app.locator('#now').textContent();
  // same identity (same PEERWAY_HOME): the same node comes back
  await stack.agent(token, [`clock=127.0.0.1:${port},public`], agent.home);
  await expect
    .poll(async () => (await app.locator('#now').textContent()) !== before, {
      timeout: 30_000,
      interval: 200,
    })
    .toBe(true);
  console.log(
    `[recovery] the page served again ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`,
  );
  expect(new URL(page.url()).hostname).toBe('clock.localhost');
  await screenshot(page, 'shell-recovered');
}, 90_000);
