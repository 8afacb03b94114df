/**
 * The agent reaches only what its owner declared (docs/security.md, issue 17
 * item 1), tried as a visitor would over a real tunnel: a real server, a
 * real agent process, real peer connections. Two declared upstreams on
 * loopback record every target they receive (one declared with the path
 * prefix /app); a third server on another loopback port, HTTP and
 * WebSocket, stands for everything the owner did not declare and counts
 * every connection it gets: it must get none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTunnel, type TunnelClient } from '@peerway/node-agent/client';
import type { PeerwayServer } from '@peerway/signaling-server';
import { Fixture, readAll } from './helpers';
import { startRecorder, type Recorder } from './fixtures/recorder';

const fx = new Fixture();
let server: PeerwayServer;
/** Declared as `root=127.0.0.1:PORT`. */
let rootUp: Recorder;
/** Declared as `prefixed=http://127.0.0.1:PORT/app`. */
let appUp: Recorder;
/** Declared by nobody. */
let forbidden: Recorder;
const tunnels: Record<'root' | 'prefixed', TunnelClient> = {} as never;

beforeAll(async () => {
  [rootUp, appUp, forbidden] = await Promise.all([
    startRecorder(),
    startRecorder(),
    startRecorder(),
  ]);
  for (const r of [rootUp, appUp, forbidden]) fx.onCleanup(() => r.close());
  server = await fx.server();
  const owner = await fx.user(server);
  await fx.agent({
    serverUrl: server.config.publicUrl,
    token: owner.token,
    services: [
      `root=127.0.0.1:${rootUp.port},public`,
      `prefixed=http://127.0.0.1:${appUp.port}/app,public`,
    ],
    waitFor: /✓ http:\/\/prefixed\./,
  });
  for (const service of ['root', 'prefixed'] as const) {
    tunnels[service] = await connectTunnel({ serverUrl: server.config.publicUrl, service });
    fx.onCleanup(() => tunnels[service].close());
  }
}, 60_000);
afterAll(() => fx.cleanup());

/** Every form of a request target that must not reach the upstream at all. */
function hostileTargets(): string[] {
  const F = `127.0.0.1:${forbidden.port}`;
  return [
    // backslashes: WHATWG URL reads "\" as "/" for http(s) and ws(s)
    `/\\${F}/`,
    `/\\\\${F}`,
    `/\\${F}`,
    `/\\/${F}/`,
    `\\\\${F}/`,
    `/\\@${F}/`,
    // scheme-relative, absolute-form, authority-form
    `//${F}/`,
    `///${F}/`,
    `//@${F}/`,
    `//user:pw@${F}/`,
    `http://${F}/`,
    `HTTP://${F}/x`,
    `ws://${F}/`,
    `https://${F}/`,
    F,
    `@${F}/`,
    `*`,
    // encoded slashes and backslashes, any case, and one level deeper
    `/%5c${F}`,
    `/%5C${F}`,
    `/%5c%5c${F}`,
    `/%2f%2f${F}`,
    `/%2F%2F${F}`,
    `/%2f${F}`,
    `/%252f%252f${F}`,
    `/%255c${F}`,
    // dot segments raw and encoded
    `/..%2f..%2f`,
    `/..%2F..%2Fadmin`,
    `/..%5c..%5cadmin`,
    `/../admin`,
    `/app/../admin`,
    `/x/../../admin`,
    `/./admin`,
    `/..`,
    `/..;/admin`,
    `/%2e%2e/admin`,
    `/%2E%2E/admin`,
    `/.%2e/admin`,
    `/%2e./admin`,
    `/%2e/admin`,
    `/%252e%252e/admin`,
    `/%c0%ae%c0%ae/admin`,
    `/%c0%af${F}`,
    `/\uff0e\uff0e/admin`,
    // control characters, spaces, NUL, raw and encoded
    `/\u0000${F}`,
    `/x\u0000`,
    `/%00`,
    `/\t/${F}/`,
    `/x\ty`,
    `/%09/${F}`,
    `/\n/${F}`,
    `/x y`,
    `/ /${F}`,
    `/x\r\nHost: ${F}`,
    `/x%0d%0aHost:%20${F}`,
    `/x\u007f`,
    // what a URL parser would rewrite or cut
    `/x#/${F}`,
    `/é`,
    `/x"y`,
    `/%zz`,
    `/x?a b`,
  ];
}

/** An attempt the agent leaves unanswered this long is reported as such. */
const ATTEMPT_TIMEOUT_MS = 3000;

/** What happened to one attempt: refused (the way it should be), or anything else. */
async function tryHttp(t: TunnelClient, method: string, target: string): Promise<string> {
  const signal = AbortSignal.timeout(ATTEMPT_TIMEOUT_MS);
  try {
    const r = await t.request(method, target, {
      signal,
      ...(method === 'POST' ? { body: Buffer.from('x') } : {}),
    });
    const body = (await readAll(r.body)).toString();
    return r.status === 400 && body.startsWith('Peerway: ') ? 'refused' : `${r.status} ${body}`;
  } catch (err) {
    return signal.aborted ? 'no answer' : (err as Error).message;
  }
}

async function tryWebSocket(t: TunnelClient, target: string): Promise<string> {
  try {
    const ws = await Promise.race([
      t.mux.openWebSocket({ path: target, protocols: [], headers: [] }),
      new Promise<never>((_, no) =>
        setTimeout(() => no(new Error('no answer')), ATTEMPT_TIMEOUT_MS),
      ),
    ]);
    const first = await new Promise<string>((ok) => {
      ws.onMessage((m) => ok(String(m)));
      setTimeout(() => ok('(no message)'), ATTEMPT_TIMEOUT_MS);
    });
    ws.close(1000, '');
    return `opened: ${first}`;
  } catch (err) {
    return /WebSocket refused: 400 /.test((err as Error).message)
      ? 'refused'
      : (err as Error).message;
  }
}

const seenBefore = () => [rootUp.targets.length, appUp.targets.length];

describe('the agent reaches only the declared upstream', () => {
  it('no HTTP request target reaches another host or leaves the declared prefix', async () => {
    const before = seenBefore();
    const notRefused: string[] = [];
    for (const service of ['root', 'prefixed'] as const)
      for (const target of hostileTargets())
        for (const method of ['GET', 'POST']) {
          const got = await tryHttp(tunnels[service], method, target);
          if (got !== 'refused')
            notRefused.push(`${service} ${method} ${JSON.stringify(target)}: ${got}`);
        }
    expect({ forbiddenConnections: forbidden.connections, notRefused }).toEqual({
      forbiddenConnections: 0,
      notRefused: [],
    });
    // refused before the upstream: the declared ones never saw any of them
    expect(seenBefore()).toEqual(before);
  });

  it('no WebSocket path reaches another host or leaves the declared prefix', async () => {
    const before = seenBefore();
    const notRefused: string[] = [];
    for (const service of ['root', 'prefixed'] as const)
      for (const target of hostileTargets()) {
        const got = await tryWebSocket(tunnels[service], target);
        if (got !== 'refused') notRefused.push(`${service} ${JSON.stringify(target)}: ${got}`);
      }
    expect({ forbiddenConnections: forbidden.connections, notRefused }).toEqual({
      forbiddenConnections: 0,
      notRefused: [],
    });
    expect(seenBefore()).toEqual(before);
  }, 60_000);

  it('CONNECT and TRACE are refused, whatever the target', async () => {
    const F = `127.0.0.1:${forbidden.port}`;
    for (const [method, target] of [
      ['CONNECT', F],
      ['CONNECT', `/${F}`],
      ['TRACE', '/'],
    ] as const)
      expect(await tryHttp(tunnels.root, method, target)).toBe('refused');
    expect(forbidden.connections).toBe(0);
  });

  it('an "@" in a path is only a path: it reaches the declared upstream, under the prefix', async () => {
    const F = `127.0.0.1:${forbidden.port}`;
    for (const target of [`/@${F}/`, `/x@${F}/`, `/:@${F}`, `/@${F}?next=//${F}/`]) {
      expect(await tryHttp(tunnels.root, 'GET', target)).toBe(`200 seen ${target}`);
      expect(await tryHttp(tunnels.prefixed, 'GET', target)).toBe(`200 seen /app${target}`);
      expect(await tryWebSocket(tunnels.root, target)).toBe(`opened: seen ${target}`);
      expect(await tryWebSocket(tunnels.prefixed, target)).toBe(`opened: seen /app${target}`);
    }
    expect(forbidden.connections).toBe(0);
  });

  it('a Host header the visitor sends does not choose the upstream', async () => {
    const F = `127.0.0.1:${forbidden.port}`;
    const r = await tunnels.root.request('GET', '/hello', { headers: [['host', F]] });
    expect((await readAll(r.body)).toString()).toBe('seen /hello');
    const ws = await tunnels.root.mux.openWebSocket({
      path: '/ws',
      protocols: [],
      headers: [['host', F]],
    });
    ws.close(1000, '');
    expect(forbidden.connections).toBe(0);
  });

  it('plain paths and their query strings pass unchanged, under the declared prefix', async () => {
    for (const target of ['/', '/a/b?x=1&y=%2F..%5c', '/caf%C3%A9/a//b', '/..x/.../a.b?q=\\x']) {
      expect(await tryHttp(tunnels.prefixed, 'GET', target)).toBe(`200 seen /app${target}`);
      expect(await tryWebSocket(tunnels.prefixed, target)).toBe(`opened: seen /app${target}`);
    }
  });

  it('the upstream declared with the prefix /app never saw a target outside /app/', () => {
    expect(appUp.targets.length).toBeGreaterThan(0);
    for (const t of appUp.targets) {
      expect(t.startsWith('/app/')).toBe(true);
      // nor one that an upstream's own normalising would move out of it
      expect(new URL(t, 'http://upstream.invalid').pathname.startsWith('/app/')).toBe(true);
    }
    expect(forbidden.connections).toBe(0);
  });
});
