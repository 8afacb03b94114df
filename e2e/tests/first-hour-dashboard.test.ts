/**
 * A node owner's first hour on the dashboard, in real Chromium against a
 * real server and agents: the sign-in pages lead back home; the add-node
 * steps make one token per click and their commands work as written (each
 * is run here with the agent's own bin); at phone width (375 px) no page is
 * wider than the screen and every command shows whole, with a copy button.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { Stack, type StackUser } from '../support/stack';
import { startClockApp } from '../fixtures/clock-app';
import {
  PHONE,
  agentPackage,
  commandBoxes,
  docScreenshots,
  exited,
  horizontalOverflow,
  typeAgentCommand,
} from '../fixtures/first-hour';

const stack = new Stack();
let appPort = 0;
beforeAll(async () => {
  const app = await startClockApp();
  appPort = app.port;
  stack.onStop(() => app.close());
  await stack.start(['--open-signup']);
  await stack.user(true); // not a first start: no one-time admin link in the way
});
afterAll(() => stack.stop());

async function signIn(ctx: BrowserContext, u: StackUser, next: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${stack.url}/signin?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(u.email);
  await page.getByLabel('Password').fill(u.password);
  await Promise.all([
    page.waitForURL((url) => url.pathname === next),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return page;
}

/** Each visible command on the page shows whole (wrapped, not cut off or scrolled), can be selected and copied. */
async function expectCommandsWhole(page: Page): Promise<string[]> {
  const boxes = await commandBoxes(page);
  expect(boxes.length).toBeGreaterThan(0);
  for (const b of boxes)
    expect(b, b.text).toMatchObject({
      clipped: false,
      scrolls: false,
      pastEdge: false,
      selectable: true,
      copyButton: true,
      splitWords: [],
    });
  return boxes.map((b) => b.text);
}

/**
 * Every cell of a table row lies within the screen (no sideways scrolling,
 * in the page or in a box), each named by its column where the rows stack.
 */
async function expectRowOnScreen(row: Locator, labels: string[]): Promise<void> {
  const cells = await row.locator('td').evaluateAll((tds) =>
    tds.map((td) => ({
      text: td.textContent,
      left: td.getBoundingClientRect().left,
      right: td.getBoundingClientRect().right,
      label: getComputedStyle(td, '::before').content,
      width: innerWidth,
    })),
  );
  expect(cells.length).toBeGreaterThanOrEqual(labels.length);
  for (const c of cells) {
    expect(c.left, `${c.text}`).toBeGreaterThanOrEqual(0);
    expect(c.right, `${c.text}`).toBeLessThanOrEqual(c.width + 0.5);
  }
  expect(cells.slice(0, labels.length).map((c) => c.label)).toEqual(labels.map((l) => `"${l}"`));
}

async function tokenCount(u: StackUser): Promise<number> {
  const r = await fetch(`${stack.url}/api/tokens`, {
    headers: { authorization: `Bearer ${u.token}` },
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { tokens: unknown[] }).tokens.length;
}

it('the sign-in and sign-up pages link back home and keep their next', async () => {
  const page = await (await stack.context()).newPage();
  await page.setViewportSize(PHONE);
  for (const kind of ['signin', 'signup'] as const) {
    await page.goto(`${stack.url}/${kind}?next=${encodeURIComponent('/tokens')}`);
    const home = page.getByRole('link', { name: 'Peerway home' });
    expect(await home.getAttribute('href')).toBe('/');
    // the other form is still one click away, with the same next
    const other = page.getByRole('link', { name: kind === 'signin' ? 'Create one' : 'Sign in' });
    expect(await other.getAttribute('href')).toBe(
      `/${kind === 'signin' ? 'signup' : 'signin'}?next=%2Ftokens`,
    );
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await Promise.all([page.waitForURL(`${stack.url}/`), home.click()]);
    await page.getByRole('heading', { name: 'Peerway' }).waitFor();
  }
}, 60_000);

it('add-node: one token per click, every command whole at phone width, and they work as written', async () => {
  const u = await stack.user();
  const page = await signIn(await stack.context(), u, '/add-node');
  await page.setViewportSize(PHONE);
  const before = await tokenCount(u);
  const make = page.getByRole('button', { name: 'Create a token for this node' });
  await make.click();
  const login = page.locator('.cmd code', { hasText: 'peerway-agent login ' });
  await login.waitFor({ timeout: 10_000 });
  // The button is gone once its token is made: no second token by a second click.
  await expect.poll(() => make.isVisible()).toBe(false);
  expect(await make.count()).toBeLessThanOrEqual(1);
  expect(await tokenCount(u)).toBe(before + 1);
  // Where to go for another token (or to revoke this one).
  expect(await page.getByRole('link', { name: 'Tokens page' }).getAttribute('href')).toBe(
    '/tokens',
  );

  expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
  const commands = await expectCommandsWhole(page);
  const pkg = agentPackage();
  expect(pkg.name).toBe('@peerway/node-agent');
  expect(Object.keys(pkg.bin)).toContain('peerway-agent');
  expect(commands[0]).toBe(`npm install -g ${pkg.name}`);
  expect(commands.slice(1).map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual([
    'peerway-agent init',
    'peerway-agent login',
    'peerway-agent expose',
    'peerway-agent run',
  ]);
  await docScreenshots(page, 'add-node');

  // The agent's commands, as the page says them, one after the other.
  const home = join(stack.dir, `typed-${randomBytes(3).toString('hex')}`);
  for (const line of commands.slice(1, -1)) {
    const p = typeAgentCommand(line, home, stack.onStop.bind(stack));
    expect(await exited(p), `${line}\n${p.out}`).toBe(0);
  }
  const run = typeAgentCommand(commands.at(-1)!, home, stack.onStop.bind(stack));
  const expose = commands.find((c) => c.startsWith('peerway-agent expose '))!;
  const service = expose.split(' ')[2]!;
  // The node comes up claimed by this account, with the service the page named.
  await expect
    .poll(
      async () => {
        const r = await fetch(`${stack.url}/api/nodes`, {
          headers: { authorization: `Bearer ${u.token}` },
        });
        const { nodes } = (await r.json()) as {
          nodes: { online: boolean; services: { name: string }[] }[];
        };
        return nodes.some((n) => n.online && n.services.some((s) => s.name === service));
      },
      { timeout: 30_000, interval: 250 },
    )
    .toBe(true);
  await run.stop();
}, 120_000);

it('tokens page at phone width: the new token shows whole, and so does its row in the list', async () => {
  const u = await stack.user();
  const page = await signIn(await stack.context(), u, '/tokens');
  await page.setViewportSize(PHONE);
  await page.locator('table').waitFor();
  await page.getByLabel('Name').fill('a-rather-long-token-name-for-a-phone');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('.cmd code').waitFor({ timeout: 10_000 });
  await page.locator('tr', { hasText: 'a-rather-long-token-name' }).waitFor();
  const [token] = await expectCommandsWhole(page);
  expect(token).toMatch(/^pwt_/);
  expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
  await expectRowOnScreen(page.locator('tr', { hasText: 'a-rather-long-token-name' }), [
    'Name',
    'Created',
    'Last used',
    'Expires',
  ]);
}, 60_000);

it("admin page at phone width: each of 'Recent sessions' shows whole, no sideways scrolling", async () => {
  const admin = await stack.user(true);
  await stack.agent(admin.token, [`phone=127.0.0.1:${appPort},public`]);
  const visit = await (await stack.context()).newPage();
  await visit.goto(stack.serviceUrl('phone', '/'));
  await expect
    .poll(() => Stack.app(visit).locator('#now').textContent(), { timeout: 20_000 })
    .toMatch(/^tick-/);

  const page = await signIn(await stack.context(), admin, '/admin');
  await page.setViewportSize(PHONE);
  const row = page.locator('#recent tbody tr', { hasText: 'phone' }).first();
  await row.waitFor({ timeout: 15_000 });
  await expect.poll(() => row.textContent(), { timeout: 15_000 }).toMatch(/direct|relayed/);
  expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
  await expectRowOnScreen(row, ['opened', 'service', 'node', 'setup', 'connection', 'result']);
}, 90_000);
