/**
 * No open redirects, over real HTTP: every return target the gateway takes
 * (sign-in's and sign-up's `next`, /authorize's `return`) comes back as a path
 * on its own origin, however it is dressed up; a browser that follows it
 * stays there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { makeUser, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
let owner: Awaited<ReturnType<typeof makeUser>>;
let port: string;
beforeAll(async () => {
  // open sign-up: the sign-in page links to sign-up then, carrying its next
  ctx = await withServer({ openSignup: true });
  server = ctx.server;
  port = new URL(server.url).port;
  owner = await makeUser(server);
  await server.store.reserveService('vault', owner.user.id, 'private', Date.now());
});
afterAll(() => ctx.stop());

/**
 * Targets as they arrive once the query string is decoded: each leads a
 * browser to another host if it is used as it is (the URL parser strips tabs
 * and newlines, reads `\` as `/` and removes dot segments).
 */
const HOSTILE = [
  '//evil.com',
  '/\\evil.com',
  '\\\\evil.com',
  '/\t/evil.com',
  '\t//evil.com',
  '/\n/evil.com',
  '/.//evil.com',
  '/a/../..//evil.com',
  'https://evil.com',
  'http://evil.com/x',
  'javascript:alert(1)',
  'data:text/html,hi',
];

/** The same targets as raw query strings, written the way an attacker sends them. */
const RAW_QUERIES = ['/%09/evil.com', '/%5Cevil.com', '%2F%2Fevil.com', '/%0A/evil.com'];

/** GET with a Host header of our choosing (Node does not resolve *.localhost). */
function get(path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; location: string | undefined; body: string }>(
    (resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

/** The `next` a sign-in or sign-up page will go to (embedded in its script). */
function embeddedNext(body: string): string {
  const m = /const next=("(?:[^"\\]|\\.)*");/.exec(body);
  expect(m, 'the page embeds its next target').not.toBeNull();
  return JSON.parse(m![1]!) as string;
}

/** Where a browser on `origin` ends up for `target`. */
const landsOn = (target: string, origin: string) => new URL(target, origin).origin;

describe.each(['/signin', '/signup'])('%s next=', (page) => {
  const gateway = () => `http://localhost:${port}`;

  it.each(HOSTILE)('falls back to / for %j', async (target) => {
    const r = await get(`${page}?next=${encodeURIComponent(target)}`);
    expect(r.status).toBe(200);
    expect(embeddedNext(r.body)).toBe('/');
    // the link to the other form carries the same, safe, target
    expect(r.body).toMatch(/\?next=%2F"/);
  });

  it.each(RAW_QUERIES)('falls back to / for the raw query %s', async (raw) => {
    const r = await get(`${page}?next=${raw}`);
    const next = embeddedNext(r.body);
    expect(landsOn(next, gateway())).toBe(gateway());
    expect(next.startsWith('//')).toBe(false);
  });

  it('keeps a same-origin deep link, query and fragment', async () => {
    const r = await get(`${page}?next=${encodeURIComponent('/add-node?x=1#claim=abc')}`);
    expect(embeddedNext(r.body)).toBe('/add-node?x=1#claim=abc');
  });
});

describe('/authorize return=', () => {
  const service = () => `http://vault.localhost:${port}`;
  const authorize = (ret: string) =>
    get(`/authorize?service=vault&return=${ret}`, { authorization: `Bearer ${owner.token}` });
  /** The return target in the callback's fragment, after checking where the redirect goes. */
  const callbackReturn = (location: string | undefined) => {
    expect(location).toBeDefined();
    const u = new URL(location!);
    expect(u.origin).toBe(service());
    expect(u.pathname).toBe('/__peerway/callback');
    return new URLSearchParams(u.hash.slice(1)).get('return')!;
  };

  it.each(HOSTILE)('sends the shell back to / for %j', async (target) => {
    const r = await authorize(encodeURIComponent(target));
    expect(r.status).toBe(302);
    expect(callbackReturn(r.location)).toBe('/');
  });

  it.each(RAW_QUERIES)(
    'sends the shell back to its own origin for the raw query %s',
    async (raw) => {
      const r = await authorize(raw);
      const ret = callbackReturn(r.location);
      expect(landsOn(ret, service())).toBe(service());
      expect(ret.startsWith('//')).toBe(false);
    },
  );

  it('keeps the deep link on the service origin', async () => {
    const r = await authorize(encodeURIComponent('/a/b/deep?x=1#top'));
    expect(callbackReturn(r.location)).toBe('/a/b/deep?x=1#top');
  });

  it('a return target on the gateway itself is not the service origin: refused', async () => {
    const r = await authorize(encodeURIComponent(`http://localhost:${port}/api/me`));
    expect(callbackReturn(r.location)).toBe('/');
  });

  it('a signed-out visitor goes to sign-in with a same-origin next', async () => {
    const r = await get(`/authorize?service=vault&return=${encodeURIComponent('//evil.com')}`);
    expect(r.status).toBe(302);
    expect(r.location!.startsWith('/signin?next=')).toBe(true);
    const signin = await get(r.location!);
    const next = embeddedNext(signin.body);
    expect(next.startsWith('/authorize?service=vault')).toBe(true);
    // and from there, /authorize still refuses the hostile return
    expect(callbackReturn((await authorize(next.split('return=')[1]!)).location)).toBe('/');
  });
});
