/**
 * The dashboard in real Chromium against a real server and real agents: the
 * claim flow from a signed-out browser through sign-up; the public listing
 * toggle showing on the public page; a node going offline showing without a
 * reload; the admin page showing a session that just happened; a non-admin
 * getting no admin data. Screenshots of each page at desktop and phone width.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { Stack, screenshot, type StackUser } from '../support/stack';
import { startClockApp } from '../fixtures/clock-app';

const stack = new Stack();
let appPort = 0;
beforeAll(async () => {
  const app = await startClockApp();
  appPort = app.port;
  stack.onStop(() => app.close());
  // This test signs up in the browser: open sign-up is off by default.
  await stack.start(['--open-signup']);
  // Not a first start: the first account needs the one-time admin link.
  await stack.user(true);
});
afterAll(() => stack.stop());

/** The whole page at desktop, then phone width, then back. */
async function shoot(page: Page, name: string): Promise<void> {
  await screenshot(page, `dashboard-${name}-desktop`, { fullPage: true });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, `dashboard-${name}-phone`, { fullPage: true });
  if (size) await page.setViewportSize(size);
}

async function signIn(ctx: BrowserContext, u: StackUser, next = '/'): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${stack.url}/signin?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(u.email);
  await page.getByLabel('Password').fill(u.password);
  await Promise.all([
    page.waitForURL((url) => url.pathname === next.split('#')[0]),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return page;
}

let owner: { email: string; password: string } | null = null;
let shortId = '';
let agent: Awaited<ReturnType<Stack['unclaimedAgent']>>['proc'] | null = null;

it('claims a node from a signed-out browser through sign-up', async () => {
  const a = await stack.unclaimedAgent([`clock=127.0.0.1:${appPort},public`], 'attic');
  agent = a.proc;
  shortId = a.shortId;
  const page = await (await stack.context()).newPage();
  await page.goto(a.claimUrl); // /c/<code> → /add-node#claim=…
  await expect.poll(() => page.locator('#claim').textContent()).toMatch(/Sign in/);
  expect(new URL(page.url()).hash).toBe(''); // the claim token left the address bar
  await shoot(page, 'add-node-signed-out');

  await page.getByRole('link', { name: 'Create an account' }).first().click();
  await page.waitForURL(/\/signup\?next=(%2F|\/)add-node/);
  owner = {
    email: `o-${randomBytes(4).toString('hex')}@test.invalid`,
    password: 'correct horse battery',
  };
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await page.getByRole('button', { name: 'Create account' }).click();

  // Back on /add-node, signed in: the dialog names the node and its short ID.
  const dialog = page.getByRole('dialog', { name: 'Claim this node?' });
  await dialog.waitFor({ timeout: 15_000 });
  await expect.poll(() => dialog.textContent()).toContain(`“attic”`);
  expect(await dialog.locator('[data-short]').textContent()).toBe(shortId);
  await shoot(page, 'add-node-confirm');
  await dialog.getByRole('button', { name: `Claim ${shortId}` }).click();
  await expect.poll(() => page.locator('#claim').textContent()).toMatch(/is yours/);
  expect(await page.evaluate(() => sessionStorage.getItem('peerway:claim'))).toBeNull();
  // The agent hears it, and its service becomes routable.
  await a.proc.waitFor(new RegExp(`Claimed by ${owner.email.replace(/[.]/g, '\\.')}`));
  await a.proc.waitFor(/✓ http:\/\/clock\./);

  await page.getByRole('link', { name: 'Go to my nodes' }).click();
  const card = page.locator(`article[data-node="${shortId}"]`);
  await expect.poll(() => card.locator('[data-status]').getAttribute('data-status')).toBe('online');
  expect(await card.locator('a.url').textContent()).toBe(stack.serviceUrl('clock', '/'));
  await shoot(page, 'my-nodes');

  // The same link again: already yours.
  await page.goto(a.claimUrl);
  await expect.poll(() => page.locator('#claim').textContent()).toMatch(/already yours/);
}, 120_000);

it('listing a node publicly shows it on the public page, and unlisting hides it', async () => {
  const ownerPage = await signIn(await stack.context(), { ...owner!, token: '' });
  const toggle = ownerPage.getByRole('switch', { name: 'Listed on the public page' });
  await toggle.check();
  await expect.poll(() => ownerPage.locator('#announce').textContent()).toMatch(/listed on/);

  const visitor = await (await stack.context()).newPage();
  await visitor.goto(`${stack.url}/public`);
  const listed = visitor.locator(`article[data-node="${shortId}"]`);
  await listed.waitFor({ timeout: 10_000 });
  expect(await listed.locator('a').first().getAttribute('href')).toBe(
    stack.serviceUrl('clock', '/'),
  );
  await shoot(visitor, 'public');

  await toggle.uncheck();
  await expect.poll(() => ownerPage.locator('#announce').textContent()).toMatch(/hidden from/);
  await expect.poll(() => listed.count(), { timeout: 10_000 }).toBe(0); // the public page refreshes itself
}, 60_000);

it('a node going offline shows without a reload', async () => {
  const page = await signIn(await stack.context(), { ...owner!, token: '' });
  const status = page.locator(`article[data-node="${shortId}"] [data-status]`);
  await expect.poll(() => status.getAttribute('data-status')).toBe('online');
  await agent!.stop('SIGKILL');
  const killed = Date.now();
  // Within the heartbeat timeout (here the socket closes at once, and the page hears in ~1 s).
  await expect
    .poll(() => status.getAttribute('data-status'), { timeout: 30_000, interval: 100 })
    .toBe('offline');
  console.log(`[dashboard] offline shown ${Date.now() - killed} ms after kill -9 of the agent`);
  await shoot(page, 'my-nodes-offline');
}, 60_000);

it('the admin page shows a session that just happened, and non-admins get no admin data', async () => {
  const admin = await stack.user(true);
  const plain = await stack.user();
  // A fresh node and a page load through it.
  await stack.agent(admin.token, [`tick=127.0.0.1:${appPort},public`]);
  const visit = await (await stack.context()).newPage();
  await visit.goto(stack.serviceUrl('tick', '/'));
  await expect
    .poll(() => Stack.app(visit).locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^tick-/);

  const page = await signIn(await stack.context(), admin, '/admin');
  const row = page.locator('#recent tbody tr', { hasText: 'tick' }).first();
  await row.waitFor({ timeout: 15_000 });
  await expect.poll(() => row.textContent(), { timeout: 15_000 }).toMatch(/direct|relayed/);
  // and which engine of the node answered, once the node has reported
  await expect
    .poll(() => row.textContent(), { timeout: 15_000 })
    .toMatch(/, (werift|node-datachannel)/);
  expect(
    Number(await page.locator('[data-stat="agents"] .value').textContent()),
  ).toBeGreaterThanOrEqual(1);
  await shoot(page, 'admin');

  const nope = await signIn(await stack.context(), plain, '/admin');
  await expect.poll(() => nope.locator('main').textContent()).toMatch(/for admins/);
  expect(await nope.locator('#admin').count()).toBe(0);
  expect(await nope.locator('nav a[data-admin]').isHidden()).toBe(true);
  const api = await nope.evaluate(async () => {
    const r = await fetch('/api/admin/signaling');
    return { status: r.status, text: await r.text() };
  });
  expect(api.status).toBe(403);
  expect(api.text).not.toMatch(/agentsConnected|recent/);
  const live = await nope.evaluate(async () => {
    const r = await fetch('/api/events?admin=1');
    const reader = r.body!.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    return new TextDecoder().decode(value);
  });
  expect(live).toMatch(/event: snapshot/);
  expect(live).not.toMatch(/"admin"/);
  await shoot(nope, 'admin-denied');
}, 120_000);

it('an owner lets a collaborator serve a service (apart from sharing), and lists, makes and revokes access tokens', async () => {
  const me = await stack.user();
  const helper = await stack.user();
  await stack.agent(me.token, [`grant=127.0.0.1:${appPort}`]);
  const page = await signIn(await stack.context(), me);
  const svc = page.locator('li.service[data-service="grant"]');
  await svc.waitFor({ timeout: 15_000 });
  const servers = svc.locator('[data-grant="servers"]');
  await expect.poll(() => servers.textContent()).toMatch(/Only your own nodes serve it/);
  await servers.getByLabel('Let their nodes serve it').fill(helper.email);
  await servers.getByRole('button', { name: 'Allow' }).click();
  await expect.poll(() => servers.textContent(), { timeout: 10_000 }).toContain(helper.email);
  await shoot(page, 'serving-grant');
  await servers
    .getByRole('button', { name: `Stop letting the nodes of ${helper.email} serve grant` })
    .click();
  await expect.poll(() => servers.textContent(), { timeout: 10_000 }).not.toContain(helper.email);

  await page.goto(`${stack.url}/tokens`);
  const table = page.locator('table');
  await table.waitFor();
  await page.getByLabel('Name').fill('laptop');
  await page.getByLabel('Expires').selectOption('30');
  await page.getByRole('button', { name: 'Create token' }).click();
  const made = (await page.locator('.cmd code').textContent({ timeout: 10_000 }))!;
  expect(made).toMatch(/^pwt_/);
  const row = page.locator('tr', { hasText: 'laptop' });
  await row.waitFor();
  expect(await row.textContent()).not.toMatch(/never.*never$/);
  await shoot(page, 'tokens');
  const me1 = await fetch(`${stack.url}/api/me`, { headers: { authorization: `Bearer ${made}` } });
  expect(me1.status).toBe(200);
  await row.getByRole('button', { name: 'Revoke token laptop' }).click();
  await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0);
  const me2 = await fetch(`${stack.url}/api/me`, { headers: { authorization: `Bearer ${made}` } });
  expect(me2.status).toBe(401);
}, 120_000);
