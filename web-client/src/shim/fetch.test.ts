import { describe, expect, it, vi } from 'vitest';
import {
  TunnelMux,
  createMemoryChannelPair,
  responseFromHead,
  type HeaderPairs,
  type IncomingTunnelRequest,
} from '@peerway/protocol';
import type { BridgeResponse } from '../bridge';
import { BodyReplay } from '../sw/body';
import {
  answerResponse,
  redirectsToGet,
  takesFetch,
  tunnelFetch,
  type FetchCarrier,
} from './fetch';

const ORIGIN = 'http://app.localhost:8080';

/** What the node saw of one request. */
interface Seen {
  method: string;
  path: string;
  headers: HeaderPairs;
  body: string;
}

const readText = (s: ReadableStream<Uint8Array>) => new Response(s).text();

/**
 * A shell's tunnel to a node whose upstream is `serve`, as the shim's
 * carrier: each request goes through a real mux pair, as the shell sends it.
 */
function tunnel(serve: (req: IncomingTunnelRequest, seen: Seen) => Promise<void>) {
  const [a, b] = createMemoryChannelPair();
  const client = new TunnelMux(a, { role: 'client' });
  const seen: Seen[] = [];
  new TunnelMux(b, { role: 'server' }).onRequest(async (req) => {
    const s = { ...req.head, body: await readText(req.body) };
    seen.push(s);
    await serve(req, s);
  });
  const carrier: FetchCarrier = {
    async fetch(req, signal): Promise<BridgeResponse> {
      const res = await client.request(
        { method: req.method, path: req.path, headers: req.headers },
        new BodyReplay(req.body, false).stream(),
        { signal },
      );
      return { ok: true, ...res };
    },
  };
  return { carrier, seen };
}

const text = (s: string) => new TextEncoder().encode(s);

/** An upstream with a few routes: redirects, a HEAD-able page, a 204. */
const routes = async (req: IncomingTunnelRequest, s: Seen) => {
  const redirect = /^\/r(\d{3})(\/.*)$/.exec(s.path);
  if (redirect)
    return req.respond(
      { status: Number(redirect[1]), statusText: '', headers: [['location', redirect[2]!]] },
      text('moved'),
    );
  if (s.path === '/loop')
    return req.respond({ status: 302, statusText: '', headers: [['location', '/loop']] }, null);
  if (s.path === '/empty')
    return req.respond({ status: 204, statusText: 'No Content', headers: [] });
  await req.respond(
    {
      status: 200,
      statusText: 'OK',
      headers: [
        ['content-type', 'text/plain'],
        ['x-seen', `${s.method} ${s.path} ${s.body}`],
      ],
    },
    s.method === 'HEAD' ? null : text(`${s.method} ${s.body}`),
  );
};

const native = () => {
  const calls: string[] = [];
  const f = (async (input: RequestInfo | URL) => {
    calls.push(input instanceof Request ? input.url : String(input));
    return new Response('native');
  }) as typeof fetch;
  return { f, calls };
};

describe('the shim’s fetch() over a real tunnel', () => {
  it('sends method, path, fields and body, and answers with status, fields, body and its URL', async () => {
    const { carrier, seen } = tunnel(routes);
    const fetch = tunnelFetch(carrier, native().f, ORIGIN);
    const r = await fetch(`${ORIGIN}/api/x?y=1`, {
      method: 'POST',
      headers: { 'X-Token': 't' },
      body: 'hi',
    });
    expect([r.url, r.redirected, r.type]).toEqual([`${ORIGIN}/api/x?y=1`, false, 'basic']);
    const copy = r.clone();
    expect(copy.url).toBe(`${ORIGIN}/api/x?y=1`);
    expect([r.status, r.statusText, await r.text()]).toEqual([200, 'OK', 'POST hi']);
    expect(await copy.text()).toBe('POST hi');
    expect(r.headers.get('x-seen')).toBe('POST /api/x?y=1 hi');
    expect(seen[0]!.headers).toContainEqual(['x-token', 't']);
  });

  it('follows a 303 after POST as a GET without the body, and a 307 with method and body', async () => {
    const { carrier, seen } = tunnel(routes);
    const fetch = tunnelFetch(carrier, native().f, ORIGIN);
    const r303 = await fetch(`${ORIGIN}/r303/done`, { method: 'POST', body: 'form' });
    expect(await r303.text()).toBe('GET ');
    expect([r303.url, r303.redirected]).toEqual([`${ORIGIN}/done`, true]);
    const r307 = await fetch(`${ORIGIN}/r307/again`, { method: 'PUT', body: 'data' });
    expect(await r307.text()).toBe('PUT data');
    expect(seen.map((s) => `${s.method} ${s.path} ${s.body}`)).toEqual([
      'POST /r303/done form',
      'GET /done ',
      'PUT /r307/again data',
      'PUT /again data',
    ]);
  });

  it('hands bodies over without making a Blob: bytes and strings as a chunk of their own, a Blob as itself', async () => {
    const { carrier, seen } = tunnel(routes);
    const bodies: unknown[] = [];
    const spy: FetchCarrier = {
      fetch: (req, signal) => (bodies.push(req.body), carrier.fetch(req, signal)),
    };
    const fetch = tunnelFetch(spy, native().f, ORIGIN);
    const blob = vi.spyOn(Request.prototype, 'blob');
    try {
      const app = new TextEncoder().encode('bytes');
      const sent = fetch(`${ORIGIN}/a`, { method: 'POST', body: app });
      app.fill(0); // the app reuses its buffer: what fetch() took stays
      await (await sent).text();
      await (await fetch(`${ORIGIN}/b`, { method: 'POST', body: 'text' })).text();
      const file = new Blob(['file']);
      await (await fetch(`${ORIGIN}/c`, { method: 'PUT', body: file })).text();
      const form = new FormData();
      form.set('f', new Blob(['in a form']), 'f.txt');
      await (await fetch(`${ORIGIN}/r307/d`, { method: 'POST', body: form })).text();
      expect(blob).not.toHaveBeenCalled();
      expect(bodies[0]).toMatchObject({ rest: null });
      expect(bodies[2]).toBe(file);
      expect(seen.map((s) => s.body.includes('in a form') || s.body)).toEqual([
        'bytes',
        'text',
        'file',
        true,
        true, // the 307 sends the form again
      ]);
    } finally {
      blob.mockRestore();
    }
  });

  it('gives no body for HEAD and for a null body status', async () => {
    const { carrier } = tunnel(routes);
    const fetch = tunnelFetch(carrier, native().f, ORIGIN);
    const head = await fetch(`${ORIGIN}/page`, { method: 'HEAD' });
    expect([head.status, head.body, head.headers.get('x-seen')]).toEqual([200, null, 'HEAD /page']);
    const empty = await fetch(`${ORIGIN}/empty`);
    expect([empty.status, empty.statusText, empty.body]).toEqual([204, 'No Content', null]);
  });

  it('fails as fetch() does: a redirect with redirect "error", more than 20 redirects, an aborted signal', async () => {
    const { carrier, seen } = tunnel(routes);
    const fetch = tunnelFetch(carrier, native().f, ORIGIN);
    await expect(fetch(`${ORIGIN}/r302/x`, { redirect: 'error' })).rejects.toThrow(TypeError);
    seen.length = 0;
    await expect(fetch(`${ORIGIN}/loop`)).rejects.toThrow('Failed to fetch');
    expect(seen).toHaveLength(21);
    const ac = new AbortController();
    ac.abort();
    await expect(fetch(`${ORIGIN}/page`, { signal: ac.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('leaves to the browser what it does not mirror, also a redirect out of the origin', async () => {
    const { carrier, seen } = tunnel(routes);
    const nat = native();
    const fetch = tunnelFetch(carrier, nat.f, ORIGIN);
    await fetch('http://other.localhost:8080/x');
    await fetch(`${ORIGIN}/__peerway/shim.js`);
    await fetch(`${ORIGIN}/page`, { redirect: 'manual' });
    await fetch(`${ORIGIN}/page`, { keepalive: true });
    const out = await fetch(`${ORIGIN}/r302/__peerway/x`);
    expect(await out.text()).toBe('native');
    expect(nat.calls).toEqual([
      'http://other.localhost:8080/x',
      `${ORIGIN}/__peerway/shim.js`,
      `${ORIGIN}/page`,
      `${ORIGIN}/page`,
      `${ORIGIN}/__peerway/x`,
    ]);
    expect(seen.map((s) => s.path)).toEqual(['/r302/__peerway/x']);
  });
});

describe('the shim’s pieces', () => {
  it('turns 303 (not after HEAD) and 301/302 after POST into a GET', () => {
    expect(redirectsToGet(303, 'PUT')).toBe(true);
    expect(redirectsToGet(303, 'HEAD')).toBe(false);
    expect(redirectsToGet(301, 'POST')).toBe(true);
    expect(redirectsToGet(302, 'POST')).toBe(true);
    expect(redirectsToGet(302, 'PUT')).toBe(false);
    expect(redirectsToGet(307, 'POST')).toBe(false);
  });

  it('takes only requests to its origin that it can mirror', () => {
    const take = (url: string, init?: RequestInit) =>
      takesFetch(new Request(url, init), new URL(url), ORIGIN);
    expect(take(`${ORIGIN}/a`)).toBe(true);
    expect(take(`${ORIGIN}/ws/client`)).toBe(false);
    expect(take(`${ORIGIN}/a`, { integrity: 'sha256-abc' })).toBe(false);
  });

  it('builds its Response as the protocol’s responseFromHead does', async () => {
    const headers: HeaderPairs = [
      ['Content-Type', 'text/html'],
      ['x-a', '1'],
      ['x-a', '2'],
      ['bad name', 'dropped'],
    ];
    const stream = () => new Response('body').body;
    for (const method of ['GET', 'HEAD'])
      for (const status of [200, 204, 205, 304, 404, 500]) {
        const head = { status, statusText: `s${status}`, headers };
        const mine = answerResponse({ ok: true, ...head, body: stream() }, method);
        const protocol = responseFromHead(head, stream(), method);
        expect([mine.status, mine.statusText, [...mine.headers]], `${method} ${status}`).toEqual([
          protocol.status,
          protocol.statusText,
          [...protocol.headers],
        ]);
        expect(mine.body === null ? null : await mine.text()).toEqual(
          protocol.body === null ? null : await protocol.text(),
        );
      }
  });

  it('answers a shell error in words with its status', async () => {
    const r = answerResponse({ ok: false, status: 502, message: 'Peerway: gone' }, 'GET');
    expect([r.status, r.headers.get('content-type'), await r.text()]).toEqual([
      502,
      'text/plain; charset=utf-8',
      'Peerway: gone',
    ]);
  });
});
