/**
 * The tunnel end to end: a real server (in-process, port 0), a real agent
 * process, real werift peer connections (the Node tunnel client), a real
 * upstream app. Each test asserts what the user of a tunnel would notice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { FrameType, encodeFrame, ResetCode, TunnelError } from '@peerway/protocol';
import { signServiceAccessToken } from '@peerway/protocol/node';
import { connectTunnel, fetchAccessToken, type TunnelClient } from '@peerway/node-agent/client';
import type { PeerwayServer } from '@peerway/signaling-server';
import { Fixture, readAll, type AgentProcess } from './helpers';
import { pattern, startCanary, startUpstream, type UpstreamApp } from './fixtures/upstream';

const fx = new Fixture();
let server: PeerwayServer;
let up: UpstreamApp;
let agent: AgentProcess;
let owner: { token: string };
let t: TunnelClient;
let canary: Awaited<ReturnType<typeof startCanary>>;
const url = () => server.config.publicUrl;

beforeAll(async () => {
  up = await startUpstream();
  fx.onCleanup(() => up.close());
  canary = await startCanary();
  fx.onCleanup(() => canary.close());
  server = await fx.server();
  owner = await fx.user(server);
  agent = await fx.agent({
    serverUrl: url(),
    token: owner.token,
    services: [
      `web=127.0.0.1:${up.port},public`,
      `secret=127.0.0.1:${up.port}`,
      'down=127.0.0.1:1',
      `hang=127.0.0.1:${up.port},public,timeoutMs=1000`,
    ],
    waitFor: /✓ http:\/\/hang\./,
  });
  t = await connectTunnel({ serverUrl: url(), service: 'web' });
  fx.onCleanup(() => t.close());
}, 60_000);
afterAll(() => fx.cleanup());

const get = async (path: string, headers: [string, string][] = []) => {
  const r = await t.request('GET', path, { headers });
  return { ...r, text: (await readAll(r.body)).toString() };
};

describe('HTTP through the tunnel', () => {
  it('GET reaches the declared upstream with its own Host', async () => {
    const r = await get('/hello?x=1');
    expect(r.status).toBe(200);
    expect(r.text).toBe(`hello GET /hello?x=1 host=127.0.0.1:${up.port}`);
    expect(t.timings.totalMs).toBeGreaterThan(0);
  });

  it('POST carries its body and content type', async () => {
    const r = await t.request('POST', '/echo', {
      headers: [['content-type', 'application/json']],
      body: new TextEncoder().encode('{"a":1}'),
    });
    expect(JSON.parse((await readAll(r.body)).toString())).toEqual({
      method: 'POST',
      body: '{"a":1}',
      type: 'application/json',
    });
  });

  it('passes a 303 back instead of following it', async () => {
    const r = await get('/redirect');
    expect(r.status).toBe(303);
    expect(r.headers.find(([k]) => k.toLowerCase() === 'location')?.[1]).toBe('/hello');
  });

  it('passes every Set-Cookie through', async () => {
    const r = await get('/cookies');
    expect(r.headers.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v)).toEqual([
      'a=1; Path=/; HttpOnly',
      'b=2; Path=/',
    ]);
  });

  it('answers Range with 206 and the right bytes', async () => {
    const r = await t.request('GET', '/file', { headers: [['range', 'bytes=1000-1999']] });
    const body = await readAll(r.body);
    expect(r.status).toBe(206);
    expect(r.headers.find(([k]) => k === 'content-range')?.[1]).toBe('bytes 1000-1999/1048576');
    expect(body.equals(pattern(1000, 1000))).toBe(true);
  });

  it('delivers Server-Sent Events as they are sent, not at the end', async () => {
    const r = await t.request('GET', '/sse');
    const arrivals: number[] = [];
    const start = performance.now();
    let text = '';
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
      text += Buffer.from(c).toString();
      arrivals.push(performance.now() - start);
    }
    expect(text).toContain('data: event 3');
    // four events 300 ms apart: the first arrives long before the last
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect(arrivals[arrivals.length - 1]! - arrivals[0]!).toBeGreaterThan(500);
  });

  it('runs 100 concurrent requests on one session', async () => {
    const res = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`/hello?i=${i}`)));
    res.forEach((r, i) => expect(r.text).toContain(`i=${i}`));
  });

  it('abort mid-download stops the upstream request', async () => {
    const before = up.slowClosed;
    const ac = new AbortController();
    const r = await t.request('GET', '/slow', { signal: ac.signal });
    const reader = r.body.getReader();
    await reader.read();
    await reader.cancel();
    const deadline = Date.now() + 5000;
    while (up.slowClosed === before && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    expect(up.slowClosed).toBe(before + 1);
  });

  it('sets X-Forwarded-*, Host and strips hop-by-hop and forged proxy headers', async () => {
    const r = await get('/headers', [
      ['connection', 'x-private'],
      ['x-private', 'secret'],
      ['keep-alive', 'timeout=5'],
      ['proxy-authorization', 'Basic eA=='],
      ['te', 'trailers'],
      ['x-forwarded-for', '6.6.6.6'],
      ['x-forwarded-host', 'evil.example'],
      ['forwarded', 'for=6.6.6.6'],
      ['x-app', 'kept'],
    ]);
    const h = JSON.parse(r.text) as Record<string, string>;
    expect(h.host).toBe(`127.0.0.1:${up.port}`);
    expect(h['x-app']).toBe('kept');
    expect(h['x-forwarded-host']).toBe(`web.${new URL(url()).host}`);
    expect(h['x-forwarded-proto']).toBe('http');
    // the peer's address as ICE saw it (any local interface here), never the forged one
    expect(h['x-forwarded-for']).toMatch(/^[0-9a-f.:]+$/);
    expect(h['x-forwarded-for']).not.toBe('6.6.6.6');
    for (const gone of ['x-private', 'keep-alive', 'proxy-authorization', 'te', 'forwarded'])
      expect(h[gone]).toBeUndefined();
  });

  it('reuses upstream connections (keep-alive)', async () => {
    const before = up.connections;
    for (let i = 0; i < 30; i++) await get(`/hello?seq=${i}`);
    expect(up.connections - before).toBeLessThanOrEqual(2);
  });

  it('a keep-alive socket the upstream dropped costs a bodiless request nothing: it goes again on a new socket', async () => {
    const first = await get('/drop-reused?1');
    expect(first.status).toBe(200);
    // the agent reuses the socket; the upstream resets it without answering
    const again = await get('/drop-reused?2');
    expect(again.status).toBe(200);
    expect(again.text).toBe('fresh socket');
    // a request with a body is not resent (it could not be replayed): 502
    const posted = await t.request('POST', '/drop-reused?3', { body: Buffer.from('x') });
    expect(posted.status).toBe(502);
    await readAll(posted.body);
  });

  it('an upstream that does not answer in time → 504', async () => {
    const t2 = await connectTunnel({ serverUrl: url(), service: 'hang' });
    try {
      const started = performance.now();
      const r = await t2.request('GET', '/hang');
      expect(r.status).toBe(504);
      expect((await readAll(r.body)).toString()).toMatch(/did not answer within 1 s/);
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      t2.close();
    }
  });

  it('measures small-request latency and session setup (printed for the report)', async () => {
    const lat: number[] = [];
    for (let i = 0; i < 300; i++) {
      const s0 = performance.now();
      const r = await t.request('GET', '/hello');
      await readAll(r.body);
      lat.push(performance.now() - s0);
    }
    lat.sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
    const setups: TunnelClient['timings'][] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connectTunnel({ serverUrl: url(), service: 'web' });
      setups.push(c.timings);
      expect((await c.request('GET', '/hello')).status).toBe(200);
      c.close();
    }
    const med = (k: keyof TunnelClient['timings']) =>
      setups
        .map((x) => x[k])
        .sort((a, b) => a - b)[2]!
        .toFixed(0);
    console.log(
      `[tunnel] small GET latency p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms (n=300, sequential); ` +
        `session setup median of 5: total ${med('totalMs')} ms = token ${med('tokenMs')} + signaling ${med('signalingMs')} + ICE ${med('iceMs')} + DTLS/SCTP ${med('dtlsSctpMs')}`,
    );
    expect(q(0.5)).toBeLessThan(50);
    expect(Number(med('totalMs'))).toBeLessThan(3000);
  });

  it('answers with the engine a client asks for, else with its default', async () => {
    // PEERWAY_ENGINE: this project's agent (unset: auto, node-datachannel first)
    const only = process.env.PEERWAY_ENGINE;
    const plain = await connectTunnel({ serverUrl: url(), service: 'web', engine: null });
    const wish = await connectTunnel({ serverUrl: url(), service: 'web', engine: 'werift' });
    try {
      expect(plain.engine).toBe(only ?? 'node-datachannel');
      expect(wish.engine).toBe(only === 'node-datachannel' ? 'node-datachannel' : 'werift');
      for (const c of [plain, wish]) {
        const r = await c.request('GET', '/hello');
        expect((await readAll(r.body)).toString()).toMatch(/^hello GET \/hello /);
      }
      // the agent's stats name the engine too
      await expect
        .poll(
          () => server.signaling.stats().recent.find((x) => x.id === wish.sessionId)?.agent?.engine,
        )
        .toBe(wish.engine);
    } finally {
      plain.close();
      wish.close();
    }
  });

  it('upstream down → 502 with a clear body', async () => {
    const t2 = await connectTunnel({ serverUrl: url(), service: 'down', userToken: owner.token });
    try {
      const r = await t2.request('GET', '/');
      expect(r.status).toBe(502);
      expect((await readAll(r.body)).toString()).toMatch(/upstream .* is not answering/);
    } finally {
      t2.close();
    }
  });

  it('streams 256 MiB down and 64 MiB up intact, with the agent memory bounded', async () => {
    const rssBefore = await agent.peakRss();
    const total = 256 * 1024 * 1024;
    const started = performance.now();
    const r = await t.request('GET', `/big?bytes=${total}`);
    const h = createHash('sha256');
    let n = 0;
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>)
      (h.update(c), (n += c.byteLength));
    const downSecs = (performance.now() - started) / 1000;
    expect(n).toBe(total);
    const expected = createHash('sha256');
    for (let off = 0; off < total; off += 1 << 20) expected.update(pattern(off, 1 << 20));
    expect(h.digest('hex')).toBe(expected.digest('hex'));

    const upTotal = 64 * 1024 * 1024;
    let sent = 0;
    const upHash = createHash('sha256');
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= upTotal) return c.close();
        const chunk = pattern(sent, 256 * 1024);
        upHash.update(chunk);
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    const upStart = performance.now();
    const ur = await t.request('POST', '/upload', { body });
    const result = JSON.parse((await readAll(ur.body)).toString()) as {
      bytes: number;
      sha256: string;
    };
    const upSecs = (performance.now() - upStart) / 1000;
    expect(result.bytes).toBe(upTotal);
    expect(result.sha256).toBe(upHash.digest('hex'));
    const growth = (await agent.peakRss()) - rssBefore;
    console.log(
      `[tunnel] download ${(total / 1e6 / downSecs).toFixed(1)} MB/s, upload ${(upTotal / 1e6 / upSecs).toFixed(1)} MB/s, agent peak RSS growth ${(growth / 1048576).toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(150 * 1024 * 1024);
  }, 240_000);
});

describe('WebSocket through the tunnel', () => {
  it('echoes text and binary and carries close codes', async () => {
    const ws = await t.mux.openWebSocket({
      path: '/ws',
      protocols: [],
      headers: [['x-forwarded-host', 'forged.example']],
    });
    const got: (string | Uint8Array)[] = [];
    ws.onMessage((m) => got.push(m));
    const closed = new Promise<number>((r) => ws.onClose((code) => r(code)));
    await ws.send('hi');
    await ws.send(new Uint8Array([9, 8, 7]));
    const deadline = Date.now() + 5000;
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // the upstream greets with the X-Forwarded-Host it saw: the agent's, not the forged one
    expect(got[0]).toBe(`forwarded-host:web.${new URL(url()).host}`);
    expect(got[1]).toBe('echo:hi');
    expect(Array.from(got[2] as Uint8Array)).toEqual([9, 8, 7]);
    await ws.send('close-me');
    expect(await closed).toBe(4321);
  });
});

describe('access', () => {
  it('a private service refuses anonymous, expired and other-service tokens', async () => {
    await expect(fetchAccessToken(url(), 'secret')).rejects.toMatchObject({ code: 'unauthorized' });
    const other = await fetchAccessToken(url(), 'web');
    await expect(
      connectTunnel({ serverUrl: url(), service: 'secret', accessToken: other }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    const expired = await signServiceAccessToken({
      privateKey: server.keys.accessPrivateKey,
      issuer: url(),
      service: 'secret',
      subject: 'x',
      access: 'private',
      nowMs: Date.now() - 3_600_000,
    });
    await expect(
      connectTunnel({ serverUrl: url(), service: 'secret', accessToken: expired }),
    ).rejects.toMatchObject({ code: 'expired' });
    const stranger = await fx.user(server);
    await expect(fetchAccessToken(url(), 'secret', stranger.token)).rejects.toMatchObject({
      code: 'forbidden',
    });
    const mine = await connectTunnel({
      serverUrl: url(),
      service: 'secret',
      userToken: owner.token,
    });
    expect((await mine.request('GET', '/hello')).status).toBe(200);
    mine.close();
  });

  it('never reaches an address outside the declared upstream', async () => {
    const attempts: [string, string, [string, string][]][] = [
      ['GET', `http://127.0.0.1:${canary.port}/`, []],
      ['GET', `//127.0.0.1:${canary.port}/`, []],
      ['GET', '/hello', [['host', `127.0.0.1:${canary.port}`]]],
      ['CONNECT', `127.0.0.1:${canary.port}`, []],
      ['GET', `@127.0.0.1:${canary.port}/`, []],
    ];
    for (const [method, path, headers] of attempts) {
      const r = await t.request(method, path, { headers });
      await readAll(r.body);
      if (path === '/hello') expect(r.status).toBe(200);
      else expect(r.status).toBe(400);
    }
    expect(canary.hits).toBe(0);
  });
});

describe('robustness', () => {
  it('hostile frames reset only their stream; the session and others keep working', async () => {
    const other = await connectTunnel({ serverUrl: url(), service: 'web' });
    fx.onCleanup(() => other.close());
    const junk: Uint8Array[] = [
      new Uint8Array([1]),
      encodeFrame(0x7e as never, 9001),
      encodeFrame(FrameType.DATA, 9003, new Uint8Array(10)),
      encodeFrame(FrameType.REQ_HEAD, 9005, new TextEncoder().encode('{"method":1}')),
      encodeFrame(FrameType.CREDIT, 9007, new Uint8Array(3)),
      encodeFrame(FrameType.WS_MSG, 9009, new Uint8Array(4)),
    ];
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(6 + (i % 50)).map((_, j) => (i * 7 + j * 13) & 0xff);
      if ([FrameType.GOAWAY, FrameType.REQ_HEAD, FrameType.WS_OPEN].includes(b[0] as never))
        continue;
      junk.push(b);
    }
    for (const j of junk) t.channel.send(j);
    expect((await get('/hello?after=junk')).status).toBe(200);
    const r = await other.request('GET', '/hello');
    expect(r.status).toBe(200);
    await readAll(r.body);
  });

  it('an opening head on a stream id in use resets that stream and stops its upstream request', async () => {
    const h = await connectTunnel({ serverUrl: url(), service: 'web' });
    fx.onCleanup(() => h.close());
    const seen: { type: number; id: number }[] = [];
    h.channel.onMessage((m) =>
      seen.push({ type: m[0]!, id: new DataView(m.buffer, m.byteOffset).getUint32(2) }),
    );
    const head = (path: string) =>
      encodeFrame(
        FrameType.REQ_HEAD,
        100_001,
        new TextEncoder().encode(JSON.stringify({ method: 'GET', path, headers: [] })),
      );
    const until = async (ok: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(ok()).toBe(true);
    };
    // Both heads in one go: the second arrives while the first stream is
    // open. (Waiting for the first answer would not do: the client's own mux
    // resets a stream it did not open as soon as an answer for it arrives.)
    const opened = up.slowOpened;
    const closed = up.slowClosed;
    h.channel.send(head('/slow'));
    h.channel.send(head('/hello'));
    await until(() => seen.some((f) => f.type === FrameType.RESET && f.id === 100_001));
    // whatever reached the upstream was stopped
    await new Promise((r) => setTimeout(r, 300));
    await until(() => up.slowOpened - opened === up.slowClosed - closed);
    // the session itself still answers pings, and the other session requests
    expect(await h.mux.ping()).toBeGreaterThanOrEqual(0);
    expect((await get('/hello?after=reuse')).status).toBe(200);
  });

  it('a reset stream surfaces as a TunnelError to the client', async () => {
    const ac = new AbortController();
    const p = t.request('GET', '/slow', { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(TunnelError);
    await expect(p).rejects.toMatchObject({ code: ResetCode.CANCEL });
  });

  it('the open data channel outlives the server; the agent reconnects when it is back', async () => {
    const dataDir = server.config.dataDir;
    const port = server.config.port;
    const mark = agent.stdout.length;
    await server.close();
    // the tunnel still serves
    expect((await get('/hello?server=down')).status).toBe(200);
    server = await fx.server({ dataDir, port });
    await agent.waitFor(/Connected to/, 40_000, mark);
    const again = await connectTunnel({ serverUrl: url(), service: 'web' });
    expect((await again.request('GET', '/hello')).status).toBe(200);
    again.close();
  }, 60_000);
});
