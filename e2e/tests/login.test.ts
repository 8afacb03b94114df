/** A form login (302 + session cookie), a page that needs the cookie, then logout — through Peerway's cookie jar. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { startLoginApp } from '../fixtures/login';

const stack = new Stack();
beforeAll(async () => {
  const app = await startLoginApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`shop=127.0.0.1:${app.port},public`]);
});
afterAll(() => stack.stop());

it('logs in, uses the session cookie, hides HttpOnly cookies from scripts, and logs out', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('shop', '/'));
  const app = Stack.app(page);
  await app.locator('#user').fill('alice', { timeout: 20_000 });
  await app.locator('#password').fill('letmein');
  await app.locator('#go').click();
  await expect
    .poll(() => app.locator('#msg').textContent(), { timeout: 10_000 })
    .toBe('Welcome alice');
  // the script sees the plain cookie, not the HttpOnly session
  expect(await app.locator('#jscookie').textContent()).toBe('theme=dark');
  // the browser's own cookie store for the service origin is untouched: Peerway keeps them
  expect(
    (await page.context().cookies()).filter((c) => c.domain.includes('shop.localhost')),
  ).toEqual([]);
  await app.locator('#private').click();
  await expect.poll(() => app.locator('#msg').textContent()).toBe('secret for alice');
  await page.goBack();
  await app.locator('#logout').click({ timeout: 10_000 });
  await expect.poll(() => app.locator('#go').count(), { timeout: 10_000 }).toBe(1);
  // after logout the private page is refused again
  const status = await app.locator('body').evaluate(async () => (await fetch('/private')).status);
  expect(status).toBe(403);
});
