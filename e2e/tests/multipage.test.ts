/** A multi-page app with many assets loads through Peerway in Chromium, navigates, and reloads on a deep link. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, screenshot } from '../support/stack';
import { startMultipageApp } from '../fixtures/multipage';

const stack = new Stack();
beforeAll(async () => {
  const app = await startMultipageApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`pages=127.0.0.1:${app.port},public`]);
});
afterAll(() => stack.stop());

it('loads, navigates, and survives a reload on a deep link', async () => {
  const ctx = await stack.context();
  const page = await ctx.newPage();
  // a public service's page comes with its token: no round trip to ask for one
  const tokenRequests: string[] = [];
  page.on('request', (r) => r.url().includes('/__peerway/token') && tokenRequests.push(r.url()));
  await page.goto(stack.serviceUrl('pages', '/'));
  const app = Stack.app(page);
  await expect.poll(() => app.locator('#title').textContent(), { timeout: 20_000 }).toBe('home');
  await expect
    .poll(() => app.locator('#loaded').textContent(), { timeout: 10_000 })
    .toBe('assets:12');
  const images = await app
    .locator('img')
    .evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth === 16).length);
  expect(images).toBe(12);
  expect(tokenRequests).toEqual([]);
  await screenshot(page, 'multipage-loaded');

  await app.locator('#to-deep').click();
  await expect.poll(() => app.locator('#title').textContent()).toBe('deep');
  // the address bar follows the app
  await expect
    .poll(() => new URL(page.url()).pathname + new URL(page.url()).search)
    .toBe('/a/b/deep?x=1');
  expect(await page.title()).toBe('Page deep');

  await page.reload();
  await expect
    .poll(() => Stack.app(page).locator('#title').textContent(), { timeout: 20_000 })
    .toBe('deep');
  expect(new URL(page.url()).pathname).toBe('/a/b/deep');
});
