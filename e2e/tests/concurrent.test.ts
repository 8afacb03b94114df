/**
 * Several browsers opening one service at the same moment: each opens its
 * tunnel on the first attempt. (Chromium's mDNS host candidates once made the
 * werift agent resolve them all at once, starve, and fail every session
 * opened together; each page then only got through on its retry 15 s later.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { startMultipageApp } from '../fixtures/multipage';

const PAGES = 6;
const stack = new Stack();
beforeAll(async () => {
  const app = await startMultipageApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`together=127.0.0.1:${app.port},public`]);
});
afterAll(() => stack.stop());

it(`${PAGES} pages opened at once all connect on their first attempt`, async () => {
  const pages = await Promise.all(
    Array.from({ length: PAGES }, async () => (await stack.context()).newPage()),
  );
  const started = Date.now();
  await Promise.all(
    pages.map(async (page) => {
      await page.goto(stack.serviceUrl('together', '/'));
      await expect
        .poll(() => Stack.app(page).locator('#title').textContent(), { timeout: 30_000 })
        .toBe('home');
    }),
  );
  console.log(`[concurrent] ${PAGES} pages served after ${Date.now() - started} ms`);
  const attempts = await Promise.all(
    pages.map((p) => p.evaluate(() => performance.getEntriesByName('peerway:session').length)),
  );
  expect(attempts).toEqual(Array.from({ length: PAGES }, () => 1));
});
