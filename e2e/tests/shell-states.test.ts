/** What the shell shows when it cannot show the app: offline node, unknown service (screenshots kept). */
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

it('shows "offline" while the node is away, then the app when it is back', async () => {
  const agent = await stack.agent(token, [`sleepy=127.0.0.1:${port},public`]);
  await agent.stop();
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('sleepy', '/'));
  await expect
    .poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 20_000 })
    .toBe('offline');
  expect(await page.locator('#status h1').textContent()).toContain('sleepy is offline');
  expect(await page.locator('#status p').textContent()).toBe(
    'The node that serves sleepy is not connected right now. This page connects by itself as soon as it is back.',
  );
  await screenshot(page, 'shell-offline');
  await stack.agent(token, [`sleepy=127.0.0.1:${port},public`], agent.home);
  await expect
    .poll(() => Stack.app(page).locator('#now').textContent(), { timeout: 30_000 })
    .toMatch(/^tick-/);
  expect(await page.locator('#status').isVisible()).toBe(false);
  await screenshot(page, 'shell-app-loaded');
}, 60_000);

it('names an unknown service clearly', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('no-such-thing', '/'));
  await expect
    .poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 20_000 })
    .toBe('unknown');
  expect(await page.locator('#status p').textContent()).toContain('no-such-thing');
  await screenshot(page, 'shell-unknown');
});

it('shows a connecting state first', async () => {
  const page = await (await stack.context()).newPage();
  // Hold the service worker's registration: until it is ready the shell
  // cannot show the app, so it must say it is connecting.
  await page.addInitScript(() => {
    const register = ServiceWorkerContainer.prototype.register;
    const w = window as unknown as { __releaseWorker?: () => void };
    const held = new Promise<void>((r) => (w.__releaseWorker = r));
    ServiceWorkerContainer.prototype.register = function (...args) {
      return held.then(() => register.apply(this, args));
    };
  });
  await page.goto(stack.serviceUrl('sleepy', '/'));
  await expect
    .poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 20_000 })
    .toBe('connecting');
  expect(await page.locator('#status h1').textContent()).toBe('Connecting to sleepy…');
  await screenshot(page, 'shell-connecting');
  await page.evaluate(() =>
    (window as unknown as { __releaseWorker: () => void }).__releaseWorker(),
  );
  await expect
    .poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 20_000 })
    .toBe('ready');
});

it("opens its tunnel while the shell's bundle is still loading, and the bundle takes it over", async () => {
  await stack.agent(token, [`early=127.0.0.1:${port},public`]);
  const page = await (await stack.context()).newPage();
  // Hold the bundle: the page's first script must get the session granted
  // and the tunnel's channel open on its own, before any bundle code runs.
  let releaseBundle!: () => void;
  const bundleHeld = new Promise<void>((r) => (releaseBundle = r));
  await page.route(/\/__peerway\/shell\.js$/, async (route) => {
    await bundleHeld;
    await route.continue();
  });
  const received: string[] = [];
  const sent: string[] = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => received.push(String(f.payload)));
    ws.on('framesent', (f) => sent.push(String(f.payload)));
  });
  await page.goto(stack.serviceUrl('early', '/'), { waitUntil: 'commit' });
  // the session, the offer, the node's answer and an open data channel,
  // all before the bundle
  await expect
    .poll(
      () =>
        page.evaluate(
          () =>
            (window as { __peerwayEarly?: { dc?: RTCDataChannel } }).__peerwayEarly?.dc?.readyState,
        ),
      { timeout: 10_000 },
    )
    .toBe('open');
  expect(received.map((m) => JSON.parse(m).type).slice(0, 2)).toEqual(['session', 'answer']);
  const said = sent.map((m) => JSON.parse(m));
  // the offer rides with the request (no separate offer message)
  expect(said[0]).toMatchObject({ type: 'open', offer: expect.stringMatching(/^v=0/) });
  expect(said.filter((m) => m.type === 'offer')).toHaveLength(0);
  // then only direct candidates (relay ones, and the end mark, wait for the bundle)
  expect(said.length).toBeGreaterThan(1);
  for (const m of said.slice(1)) {
    expect(m.type).toBe('candidate');
    expect(m.candidate.candidate).not.toMatch(/ typ relay /);
  }
  expect(await page.evaluate(() => typeof (window as { __peerway?: unknown }).__peerway)).toBe(
    'undefined',
  );
  releaseBundle();
  await expect
    .poll(() => Stack.app(page).locator('#now').textContent(), { timeout: 30_000 })
    .toMatch(/^tick-/);
  // one session, the early one: no second request (nor offer) from the bundle
  expect(sent.filter((m) => JSON.parse(m).type === 'open')).toHaveLength(1);
  expect(sent.filter((m) => JSON.parse(m).type === 'offer')).toHaveLength(0);
  expect(await page.evaluate(() => '__peerwayEarly' in window)).toBe(false);
}, 60_000);

it('asks with its token when the bundle runs before the signaling socket opens', async () => {
  await stack.agent(token, [`quick=127.0.0.1:${port},public`]);
  const page = await (await stack.context()).newPage();
  // The page script's "open" listener runs only once the bundle is running
  // (which by then has moved the page's token into sessionStorage).
  await page.addInitScript(() => {
    const add = WebSocket.prototype.addEventListener;
    WebSocket.prototype.addEventListener = function (
      this: WebSocket,
      type: string,
      fn: EventListenerOrEventListenerObject,
      opts?: boolean | AddEventListenerOptions,
    ) {
      if (type !== 'open' || typeof fn !== 'function') return add.call(this, type, fn, opts);
      const later = (ev: Event) => {
        if ('__peerway' in window) fn.call(this, ev);
        else setTimeout(() => later(ev), 5);
      };
      return add.call(this, type, later, opts);
    } as typeof WebSocket.prototype.addEventListener;
  });
  const sent: string[] = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));
  await page.goto(stack.serviceUrl('quick', '/'));
  await expect
    .poll(() => Stack.app(page).locator('#now').textContent(), { timeout: 10_000 })
    .toMatch(/^tick-/);
  const said = sent.map((m) => JSON.parse(m));
  const opens = said.filter((m) => m.type === 'open');
  expect(opens).toHaveLength(1);
  // the bundle took over before the request went: still one offer, in it
  expect(opens[0].offer).toMatch(/^v=0/);
  expect(said.filter((m) => m.type === 'offer')).toHaveLength(0);
  expect(opens[0].token).toBe(
    await page.evaluate(() => sessionStorage.getItem('peerway:token') ?? 'none'),
  );
}, 60_000);
