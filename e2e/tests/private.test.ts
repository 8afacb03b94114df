/** A private service: signed-out visitors go through sign-in and land on the deep link; others are refused. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, screenshot, type StackUser } from '../support/stack';
import { startMultipageApp } from '../fixtures/multipage';

const stack = new Stack();
let owner: StackUser;
let stranger: StackUser;
beforeAll(async () => {
  const app = await startMultipageApp();
  stack.onStop(() => app.close());
  await stack.start();
  owner = await stack.user();
  stranger = await stack.user();
  await stack.agent(owner.token, [`vault=127.0.0.1:${app.port}`]);
});
afterAll(() => stack.stop());

async function signIn(page: import('playwright-core').Page, u: StackUser) {
  await page.waitForURL(/\/signin\?next=/, { timeout: 20_000 });
  await page.fill('#email', u.email);
  await page.fill('#password', u.password);
  await page.click('button[type=submit]');
}

it('the owner signs in and lands on the deep link', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('vault', '/a/b/deep?x=1'));
  // the shell hands over to the gateway: shoot once the sign-in page is there
  await page.waitForURL(/\/signin\?next=/, { timeout: 20_000 });
  await page.locator('#email').waitFor();
  await screenshot(page, 'private-signin');
  await signIn(page, owner);
  await expect
    .poll(() => Stack.app(page).locator('#title').textContent(), { timeout: 20_000 })
    .toBe('deep');
  expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/a/b/deep?x=1');
  // nothing of the gateway session is visible to the service
  expect(
    await Stack.app(page)
      .locator('body')
      .evaluate(() => document.cookie),
  ).not.toContain('pw_session');
});

it('another user is refused with a clear page', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('vault', '/about'));
  await signIn(page, stranger);
  await expect
    .poll(() => page.locator('h1').textContent(), { timeout: 10_000 })
    .toContain('No access');
  expect(await page.locator('main').textContent()).toContain(stranger.email);
  await screenshot(page, 'private-denied');
});

/** Node does not resolve *.localhost: ask 127.0.0.1 with the service's Host. */
async function ask(method: string, path: string, headers: Record<string, string> = {}) {
  const { request } = await import('node:http');
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: stack.port,
        path,
        method,
        headers: { host: `vault.localhost:${stack.port}`, ...headers },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

it('an anonymous token request is refused outright, and the page carries none', async () => {
  expect((await ask('POST', '/__peerway/token')).status).toBe(401);
  const page = await ask('GET', '/', { 'sec-fetch-dest': 'document' });
  expect(page.status).toBe(200);
  expect(page.body).toContain('window.__PEERWAY__={"service":"vault"');
  expect(page.body).not.toContain('"token"');
});
