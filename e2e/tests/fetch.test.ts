/**
 * The app's fetch() goes straight to the shell (no service worker hop) and
 * must behave as the browser's fetch does: status, headers, bodies both ways,
 * redirects, cookies, abort, HEAD, 204. Other requests (XHR, subresources)
 * still go through the service worker. Real Chromium, server, agent.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Frame } from 'playwright-core';
import { Stack } from '../support/stack';
import { startFetchApp } from '../fixtures/fetch-app';

const stack = new Stack();
let app: Frame;
let upstream: Awaited<ReturnType<typeof startFetchApp>>;
beforeAll(async () => {
  upstream = await startFetchApp();
  stack.onStop(() => upstream.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`rest=127.0.0.1:${upstream.port},public`]);
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('rest', '/'));
  await Stack.app(page).locator('#t').waitFor({ timeout: 20_000 });
  app = page.frames().find((f) => f !== page.mainFrame())!;
});
afterAll(() => stack.stop());

it('answers fetch() from the shell directly, as a network response would look', async () => {
  const r = await app.evaluate(async () => {
    const res = await fetch('/echo?x=1', { headers: { 'x-custom': 'hi' } });
    const viaXhr = await new Promise<string>((resolve) => {
      const x = new XMLHttpRequest();
      x.open('GET', '/echo?x=xhr');
      x.onload = () => resolve(x.responseText);
      x.send();
    });
    const entries = (p: string) =>
      performance
        .getEntriesByType('resource')
        .filter((e) => e.name.endsWith(p)) as PerformanceResourceTiming[];
    return {
      status: res.status,
      type: res.type,
      url: res.url,
      cloneUrl: res.clone().url,
      isResponse: res instanceof Response,
      echo: res.headers.get('x-echo'),
      json: await res.json(),
      xhr: JSON.parse(viaXhr),
      // the browser records a request that went through its network layer (and the worker), not ours
      fetchEntries: entries('/echo?x=1').length,
      xhrWorker: entries('/echo?x=xhr').map((e) => e.workerStart > 0),
      href: location.origin,
    };
  });
  expect(r).toMatchObject({ status: 200, type: 'basic', isResponse: true, echo: 'yes' });
  expect(r.url).toBe(`${r.href}/echo?x=1`);
  expect(r.cloneUrl).toBe(r.url);
  expect(r.json).toMatchObject({ method: 'GET', path: '/echo?x=1', custom: 'hi', bytes: 0 });
  expect(r.xhr).toMatchObject({ method: 'GET', path: '/echo?x=xhr' });
  expect(r.fetchEntries).toBe(0);
  expect(r.xhrWorker).toEqual([true]);
});

it('sends request bodies whole and follows redirects as fetch does', async () => {
  const r = await app.evaluate(async () => {
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    const post = await (await fetch('/echo', { method: 'POST', body: data })).json();
    const found = await fetch('/found');
    const seeOther = await fetch('/see-other', { method: 'POST', body: 'dropped' });
    const away = await fetch('/away').then(
      (x) => x.status,
      (e: Error) => e.name,
    );
    const loop = await fetch('/loop').then(
      () => 'followed',
      (e: Error) => e.name,
    );
    const refused = await fetch('/found', { redirect: 'error' }).then(
      () => 'followed',
      (e: Error) => e.name,
    );
    return {
      post,
      sum: data.reduce((a, b) => (a + b) % 65521, 0),
      found: { redirected: found.redirected, url: found.url, json: await found.json() },
      seeOther: await seeOther.json(),
      away,
      loop,
      refused,
    };
  });
  expect(r.post).toMatchObject({ method: 'POST', bytes: 3 * 1024 * 1024, sum: r.sum });
  expect(r.found.redirected).toBe(true);
  expect(r.found.url).toMatch(/\/echo\?from=found$/);
  expect(r.found.json).toMatchObject({ path: '/echo?from=found' });
  expect(r.seeOther).toMatchObject({ method: 'GET', path: '/echo?from=303', bytes: 0 });
  // the upstream is not CORS-enabled: the browser's fetch refuses to show it, as it would have
  expect(r.away).toBe('TypeError');
  expect(r.loop).toBe('TypeError');
  expect(r.refused).toBe('TypeError');
});

it('keeps cookies in the jar, and leaves them out for credentials "omit"', async () => {
  const r = await app.evaluate(async () => {
    await fetch('/login');
    const seen = (await (await fetch('/echo')).json()) as { cookie: string };
    const omitted = (await (await fetch('/echo', { credentials: 'omit' })).json()) as {
      cookie: string | null;
    };
    return { visible: document.cookie, seen: seen.cookie, omitted: omitted.cookie };
  });
  expect(r.visible).toBe('token=t1');
  expect(r.seen).toContain('token=t1');
  expect(r.seen).toContain('hidden=h1');
  expect(r.omitted).toBeNull();
});

it('aborts, and answers HEAD and 204 without a body', async () => {
  // a request the app never answers, aborted once it has reached the app
  await app.evaluate(() => {
    const w = window as { __abort?: AbortController; __slow?: Promise<string> };
    w.__abort = new AbortController();
    w.__slow = fetch('/slow', { signal: w.__abort.signal }).then(
      () => 'answered',
      (e: Error) => e.name,
    );
  });
  await expect.poll(() => upstream.slowInFlight(), { timeout: 10_000 }).toBe(1);
  await app.evaluate(() => (window as { __abort?: AbortController }).__abort!.abort());
  // The abort goes through the tunnel to the app, which is not left holding
  // the request (the agent's own head timeout would end it only after 30 s).
  await expect.poll(() => upstream.slowInFlight(), { timeout: 10_000 }).toBe(0);
  const r = await app.evaluate(async () => {
    const w = window as { __slow?: Promise<string> };
    const head = await fetch('/echo', { method: 'HEAD' });
    const none = await fetch('/no-content');
    return {
      aborted: await w.__slow!,
      head: { status: head.status, body: head.body, echo: head.headers.get('x-echo') },
      none: { status: none.status, text: await none.text() },
      after: (await (await fetch('/echo?after')).json()) as { path: string },
    };
  });
  expect(r.aborted).toBe('AbortError');
  expect(r.head).toEqual({ status: 200, body: null, echo: 'yes' });
  expect(r.none).toEqual({ status: 204, text: '' });
  expect(r.after.path).toBe('/echo?after');
});

it("gives the app's fetch() and XHR of an HTML page its bytes as they are (the shim goes only into documents)", async () => {
  const r = await app.evaluate(async () => {
    const viaFetch = await (await fetch('/')).text();
    const viaXhr = await new Promise<string>((resolve) => {
      const x = new XMLHttpRequest();
      x.open('GET', '/');
      x.onload = () => resolve(x.responseText);
      x.send();
    });
    return {
      viaFetch,
      viaXhr,
      // the frame's own document did get it
      docHasShim: !!document.querySelector('script[src="/__peerway/shim.js"]'),
    };
  });
  const page =
    '<!doctype html><html><head><title>api</title></head><body><h1 id="t">api</h1></body></html>';
  expect(r.viaFetch).toBe(page);
  expect(r.viaXhr).toBe(page);
  expect(r.docHasShim).toBe(true);
});
