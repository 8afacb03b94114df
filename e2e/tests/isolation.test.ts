/** Two services on one node cannot read each other's cookies or storage (each has its own origin). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { startLoginApp } from '../fixtures/login';

const stack = new Stack();
beforeAll(async () => {
  const app = await startLoginApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [
    `alpha=127.0.0.1:${app.port},public`,
    `beta=127.0.0.1:${app.port},public`,
  ]);
});
afterAll(() => stack.stop());

it('cookies and storage stay with their service', async () => {
  const ctx = await stack.context();
  const a = await ctx.newPage();
  await a.goto(stack.serviceUrl('alpha', '/'));
  const appA = Stack.app(a);
  await appA.locator('#user').fill('alice', { timeout: 20_000 });
  await appA.locator('#password').fill('letmein');
  await appA.locator('#go').click();
  await expect
    .poll(() => appA.locator('#msg').textContent(), { timeout: 10_000 })
    .toBe('Welcome alice');
  await appA.locator('body').evaluate(() => {
    localStorage.setItem('secret', 'alpha-only');
    document.cookie = 'mine=alpha; Path=/';
  });

  const b = await ctx.newPage();
  await b.goto(stack.serviceUrl('beta', '/'));
  const appB = Stack.app(b);
  await appB.locator('#go').waitFor({ timeout: 20_000 }); // beta shows the login form: alpha's session is not here
  const seen = await appB
    .locator('body')
    .evaluate(() => ({ ls: localStorage.getItem('secret'), cookie: document.cookie }));
  expect(seen).toEqual({ ls: null, cookie: '' });
  // and beta's shell cannot read alpha's jar
  expect(await b.evaluate(() => localStorage.getItem('peerway:cookies'))).toBeNull();
});
