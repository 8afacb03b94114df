/**
 * A node owner's first hour, the service's side: the node goes away while a
 * visitor has its service open, and comes back. Meanwhile the offline card
 * is over the app; once the node is back the shell clears everything it
 * showed (the card, the badge) and the app works again without a reload.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { startClockApp } from '../fixtures/clock-app';
import { docScreenshots } from '../fixtures/first-hour';

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

it('clears the offline card when the node comes back, and the app works without a reload', async () => {
  const agent = await stack.agent(token, [`homeapp=127.0.0.1:${port},public`]);
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('homeapp', '/'));
  const app = Stack.app(page);
  await expect
    .poll(() => app.locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^tick-\d+$/);
  const loads: string[] = [];
  page.on('framenavigated', (f) => f === page.mainFrame() && loads.push(f.url()));

  await agent.stop('SIGKILL');
  // The shell notices, tries again, and tells the visitor the node is away.
  const status = page.locator('#status');
  await expect
    .poll(() => status.getAttribute('data-state'), { timeout: 30_000, interval: 100 })
    .toBe('offline');
  expect(await status.isVisible()).toBe(true);
  expect(await page.locator('#status h1').textContent()).toBe('homeapp is offline');
  // The card is on top of the app's frame, not under its (transparent) page.
  const onTop = await page.evaluate(() => {
    const r = document.querySelector('#status .card')!.getBoundingClientRect();
    return !!document
      .elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
      ?.closest('#status');
  });
  expect(onTop).toBe(true);
  await docScreenshots(page, 'shell-offline');

  await stack.agent(token, [`homeapp=127.0.0.1:${port},public`], agent.home);
  // Back: no card, no badge, and the app's own requests go through again.
  await expect.poll(() => status.isVisible(), { timeout: 30_000, interval: 100 }).toBe(false);
  expect(await status.getAttribute('data-state')).toBe('ready');
  expect(await page.locator('#badge').isVisible()).toBe(false);
  const before = Number((await app.locator('#now').textContent())!.slice('tick-'.length));
  await expect
    .poll(async () => Number((await app.locator('#now').textContent())!.slice('tick-'.length)), {
      timeout: 10_000,
    })
    .toBeGreaterThan(before);
  // The app can be clicked (nothing covers it).
  const hit = await page.evaluate(() => {
    const el = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
    return el?.id;
  });
  expect(hit).toBe('app');
  // And it stays clear: the retry loop left no timer that puts the card back.
  await expect
    .poll(async () => Number((await app.locator('#now').textContent())!.slice('tick-'.length)), {
      timeout: 10_000,
    })
    .toBeGreaterThan(before + 10);
  expect(await status.isVisible()).toBe(false);
  expect(loads).toEqual([]); // never reloaded
}, 120_000);
