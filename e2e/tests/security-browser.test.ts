/**
 * Browser-side hardening in real Chromium: the gateway's session cookie is
 * `__Host-`prefixed and stays on the gateway, a service's page cannot frame
 * the dashboard (while the shell still frames the app on its own origin),
 * and the shell's callback never sends a visitor to another site.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, type StackUser } from '../support/stack';
import { startFramerApp } from '../fixtures/security-browser';

const stack = new Stack();
let owner: StackUser;
let friend: StackUser;
beforeAll(async () => {
  const app = await startFramerApp(() => stack.url);
  stack.onStop(() => app.close());
  await stack.start();
  owner = await stack.user();
  friend = await stack.user();
  await stack.agent(owner.token, [
    `framer=127.0.0.1:${app.port},public`,
    `vault=127.0.0.1:${app.port}`,
  ]);
});

/** The owner's API call (bearer: what the dashboard does with its cookie). */
async function asOwner(method: string, path: string, body?: unknown): Promise<number> {
  const r = await fetch(`${stack.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${owner.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return r.status;
}
afterAll(() => stack.stop());

it('signing in sets __Host-pw_session: Secure, host-only, HttpOnly, and never sent to a service origin', async () => {
  const ctx = await stack.context();
  const page = await ctx.newPage();
  await page.goto(`${stack.url}/signin?next=%2Fnodes`);
  await page.fill('#email', owner.email);
  await page.fill('#password', owner.password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${stack.url}/nodes`);
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name.endsWith('pw_session'));
  expect(session).toMatchObject({
    name: '__Host-pw_session',
    domain: 'localhost',
    path: '/',
    secure: true,
    httpOnly: true,
    sameSite: 'Lax',
  });
  // the dashboard is signed in on its strength
  const me = await page.evaluate(async () => (await fetch('/api/me')).status);
  expect(me).toBe(200);
  // a service origin gets none of it
  expect(await ctx.cookies(stack.serviceUrl('framer'))).toEqual([]);
  // signing out clears it in the browser too
  expect(
    await page.evaluate(async () => (await fetch('/api/auth/logout', { method: 'POST' })).status),
  ).toBe(200);
  expect((await ctx.cookies()).filter((c) => c.name.endsWith('pw_session'))).toEqual([]);
});

it("a service's page cannot frame the gateway's dashboard; it still frames its own origin", async () => {
  const page = await (await stack.context()).newPage();
  const refused: string[] = [];
  page.on('console', (m) => {
    if (/frame-ancestors|X-Frame-Options/.test(m.text())) refused.push(m.text());
  });
  await page.goto(stack.serviceUrl('framer', '/'));
  const app = Stack.app(page);
  await expect.poll(() => app.locator('#title').textContent(), { timeout: 20_000 }).toBe('framer');
  // the shell frames the app, and the app frames its own origin: both work
  await expect
    .poll(() => app.frameLocator('#own').locator('#inner').textContent(), { timeout: 20_000 })
    .toBe('own origin');
  // the dashboard frame is refused by the browser: an error page, no dashboard in it
  await expect.poll(() => refused.length, { timeout: 10_000 }).toBeGreaterThan(0);
  expect(refused.join('\n')).toMatch(/frame-ancestors 'none'/);
  // Chromium replaces a refused frame with its error page, and may drop the
  // frame's name with it: so look at every frame the page has, not one by name
  const frames = page.frames();
  expect(frames.length).toBeGreaterThanOrEqual(3); // shell, app, its own frame
  expect(frames.map((f) => f.url()).filter((u) => u.startsWith(stack.url))).toEqual([]);
});

it("the shell's callback sends a hostile return back to its own origin", async () => {
  const ctx = await stack.context();
  const page = await ctx.newPage();
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    const host = new URL(r.url()).hostname;
    if (host.includes('evil')) elsewhere.push(r.url());
  });
  const origin = new URL(stack.serviceUrl('framer')).origin;
  for (const ret of [
    '/\t/evil.test/',
    '/\\evil.test/',
    '/.//evil.test/',
    '//evil.test/',
    'https://evil.test/',
  ]) {
    await page.goto(`${origin}/__peerway/callback#token=x&return=${encodeURIComponent(ret)}`);
    await page.waitForURL((u) => u.pathname !== '/__peerway/callback', { timeout: 20_000 });
    expect(new URL(page.url()).origin, ret).toBe(origin);
    expect(new URL(page.url()).pathname, ret).toBe('/');
  }
  // a deep link on the origin is kept
  await page.goto(`${origin}/__peerway/callback#token=x&return=${encodeURIComponent('/a/b?c=1')}`);
  await page.waitForURL((u) => u.pathname !== '/__peerway/callback', { timeout: 20_000 });
  expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/a/b?c=1');
  expect(elsewhere).toEqual([]);
});

it('the shell renews its short token on the service origin, until the owner takes the share back', async () => {
  expect(await asOwner('PUT', '/api/services/vault/access', { access: 'shared' })).toBe(200);
  expect(await asOwner('POST', '/api/services/vault/shares', { email: friend.email })).toBe(201);
  const page = await (await stack.context()).newPage();
  const seen: string[] = [];
  page.on('request', (r) => seen.push(`${r.method()} ${r.url()}`));
  await page.goto(stack.serviceUrl('vault', '/'));
  await page.waitForURL(/\/signin\?next=/, { timeout: 20_000 });
  await page.fill('#email', friend.email);
  await page.fill('#password', friend.password);
  await page.click('button[type=submit]');
  await expect
    .poll(() => Stack.app(page).locator('#title').textContent(), { timeout: 20_000 })
    .toBe('framer');
  // The tab's token is near its end (an expired stand-in): a reload renews it
  // here, with no trip through the gateway's /authorize.
  const expireToken = () =>
    page.evaluate(() =>
      sessionStorage.setItem('peerway:token', `x.${btoa(JSON.stringify({ exp: 1 }))}.y`),
    );
  expect(await page.evaluate(() => sessionStorage.getItem('peerway:renew'))).toBeTruthy();
  await expireToken();
  seen.length = 0;
  await page.reload();
  await expect
    .poll(() => Stack.app(page).locator('#title').textContent(), { timeout: 20_000 })
    .toBe('framer');
  expect(seen.filter((r) => r.includes('/__peerway/token'))).toEqual([
    `POST ${stack.serviceUrl('vault', '/__peerway/token')}`,
  ]);
  expect(seen.filter((r) => r.includes('/authorize'))).toEqual([]);
  // The owner takes the share back: the next renewal is refused, the shell
  // goes through /authorize, and the gateway says why.
  expect(
    await asOwner('DELETE', `/api/services/vault/shares/${encodeURIComponent(friend.email)}`),
  ).toBe(200);
  await expireToken();
  await page.reload();
  await expect
    .poll(() => page.locator('h1').textContent(), { timeout: 20_000 })
    .toContain('No access');
  expect(new URL(page.url()).pathname).toBe('/authorize');
});
