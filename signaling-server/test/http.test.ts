/** The HTTP API in-process over real sockets: accounts, tokens, claims, visibility, access, admin. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, get } from 'node:http';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createClaimToken, generateIdentity } from '@peerway/protocol/node';
import { FakeAgent, api, makeUser, randomEmail, randomPassword, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';
import { WEB_DIST } from '../src/web/service-origin';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
beforeAll(async () => {
  // These tests sign up without invites: open sign-up is off by default.
  ctx = await withServer({ openSignup: true });
  server = ctx.server;
});
afterAll(() => ctx.stop());

describe('accounts', () => {
  it('the first sign-up needs the admin link, which makes an admin once', async () => {
    expect(server.adminInvite).toMatch(/\/signup\?invite=/);
    const invite = new URL(server.adminInvite!).searchParams.get('invite')!;
    const email = randomEmail();
    const password = randomPassword();
    const refused = await api(server, 'POST', '/api/auth/signup', { body: { email, password } });
    expect(refused.status).toBe(403);
    const r = await api(server, 'POST', '/api/auth/signup', { body: { email, password, invite } });
    expect(r.status).toBe(201);
    expect(r.json.user.isAdmin).toBe(true);
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/pw_session=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).not.toMatch(/Domain=/i);
    const again = await api(server, 'POST', '/api/auth/signup', {
      body: { email: randomEmail(), password, invite },
    });
    expect(again.status).toBe(410);
    const me = await api(server, 'GET', '/api/me', { cookie: cookie.split(';')[0] });
    expect(me.json.user.email).toBe(email);
  });

  it('login checks the password; logout clears the cookie; bad bodies are 400', async () => {
    const email = randomEmail();
    const password = randomPassword();
    expect(
      (await api(server, 'POST', '/api/auth/signup', { body: { email, password } })).status,
    ).toBe(201);
    expect(
      (
        await api(server, 'POST', '/api/auth/login', {
          body: { email, password: 'wrong-password' },
        })
      ).status,
    ).toBe(401);
    const ok = await api(server, 'POST', '/api/auth/login', { body: { email, password } });
    expect(ok.status).toBe(200);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0]!;
    expect((await api(server, 'GET', '/api/me', { cookie })).status).toBe(200);
    // Writes on the cookie's strength only from the gateway's own pages.
    const host = new URL(server.url).host;
    for (const headers of <Record<string, string>[]>[
      { origin: 'http://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: `http://blog.${host}` },
      { origin: 'null' },
    ]) {
      const r = await api(server, 'POST', '/api/tokens', { cookie, body: { name: 'x' }, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.json.error.message).toMatch(/cross-site/);
    }
    const same = await api(server, 'POST', '/api/tokens', {
      cookie,
      body: { name: 'x' },
      headers: { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
    });
    expect(same.status).toBe(201);
    const out = await api(server, 'POST', '/api/auth/logout', { cookie });
    expect(out.headers.get('set-cookie')).toMatch(/pw_session=;/);
    // A copy of the signed-out cookie does not work any more.
    expect((await api(server, 'GET', '/api/me', { cookie })).status).toBe(401);
    expect((await api(server, 'POST', '/api/auth/login', { body: { email: 5 } })).status).toBe(400);
    const raw = await fetch(server.url + '/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(raw.status).toBe(400);
    expect(
      (await api(server, 'POST', '/api/auth/signup', { body: { email: 'not-an-email', password } }))
        .status,
    ).toBe(400);
  });

  it('personal access tokens authenticate and can be revoked', async () => {
    const { token } = await makeUser(server);
    expect((await api(server, 'GET', '/api/me', { token })).status).toBe(200);
    const created = await api(server, 'POST', '/api/tokens', { token, body: { name: 'ci' } });
    expect(created.json.token).toMatch(/^pwt_/);
    expect((await api(server, 'GET', '/api/me', { token: created.json.token })).status).toBe(200);
    expect((await api(server, 'DELETE', `/api/tokens/${created.json.id}`, { token })).status).toBe(
      200,
    );
    expect((await api(server, 'GET', '/api/me', { token: created.json.token })).status).toBe(401);
    expect((await api(server, 'GET', '/api/me', { token: 'pwt_x_forged' })).status).toBe(401);
  });
});

describe('claiming nodes', () => {
  it('claims with a node-signed token and refuses expired, forged, malformed and taken ones', async () => {
    const a = await makeUser(server);
    const b = await makeUser(server);
    const node = generateIdentity();
    const good = createClaimToken(node, 'home-box', Date.now());
    const info = await api(
      server,
      'GET',
      `/api/nodes/claim-info?token=${encodeURIComponent(good)}`,
    );
    expect(info.json).toMatchObject({ name: 'home-box', shortId: node.shortId, claimed: false });

    const expired = createClaimToken(node, 'home-box', Date.now() - 2 * 86_400_000, 60);
    const r1 = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: expired },
    });
    expect([r1.status, r1.json.error.code]).toEqual([410, 'expired']);

    const other = generateIdentity();
    const [p, body] = good.split('.').slice(0, 2) as [string, string];
    const forgedSig = createClaimToken(other, 'home-box', Date.now()).split('.')[2];
    const r2 = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: `${p}.${body}.${forgedSig}` },
    });
    expect([r2.status, r2.json.error.code]).toEqual([400, 'invalid_signature']);
    const altered = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), name: 'evil' }),
    ).toString('base64url');
    const r3 = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: `${p}.${altered}.${good.split('.')[2]}` },
    });
    expect(r3.json.error.code).toBe('invalid_signature');
    const r4 = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: 'garbage' },
    });
    expect([r4.status, r4.json.error.code]).toEqual([400, 'bad_request']);
    expect(
      (await api(server, 'POST', '/api/nodes/claim', { body: { claimToken: good } })).status,
    ).toBe(401);

    const ok = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: good },
    });
    expect(ok.status).toBe(200);
    expect(ok.json.node).toMatchObject({
      shortId: node.shortId,
      name: 'home-box',
      online: false,
      isPublic: false,
    });
    const mineAgain = await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: good },
    });
    // spent: the same link does nothing more, not even for its owner
    expect([mineAgain.status, mineAgain.json.error.message]).toEqual([
      409,
      expect.stringMatching(/yours already/),
    ]);
    const taken = await api(server, 'POST', '/api/nodes/claim', {
      token: b.token,
      body: { claimToken: createClaimToken(node, 'x', Date.now()) },
    });
    expect([taken.status, taken.json.error.code]).toEqual([409, 'conflict']);
    expect((await api(server, 'GET', '/api/nodes', { token: b.token })).json.nodes).toEqual([]);
  });

  it('visibility shows up in the public listing; only the owner may change it', async () => {
    const a = await makeUser(server);
    const b = await makeUser(server);
    const node = generateIdentity();
    await api(server, 'POST', '/api/nodes/claim', {
      token: a.token,
      body: { claimToken: createClaimToken(node, 'pub-node', Date.now()) },
    });
    const listed = async () =>
      (await api(server, 'GET', '/api/nodes/public')).json.nodes.map(
        (n: { shortId: string }) => n.shortId,
      );
    expect(await listed()).not.toContain(node.shortId);
    expect(
      (
        await api(server, 'PUT', `/api/nodes/${node.shortId}/visibility`, {
          token: b.token,
          body: { isPublic: true },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await api(server, 'PUT', `/api/nodes/${node.shortId}/visibility`, {
          token: a.token,
          body: { isPublic: 'yes' },
        })
      ).status,
    ).toBe(400);
    const r = await api(server, 'PUT', `/api/nodes/${node.shortId}/visibility`, {
      token: a.token,
      body: { isPublic: true },
    });
    expect(r.json.node.isPublic).toBe(true);
    expect(await listed()).toContain(node.shortId);
    const pub = (await api(server, 'GET', '/api/nodes/public')).json.nodes.find(
      (n: { shortId: string }) => n.shortId === node.shortId,
    );
    expect(JSON.stringify(pub)).not.toContain(a.user.email);
    const off = await api(server, 'PUT', `/api/nodes/${node.nodeId}/visibility`, {
      token: a.token,
      body: { isPublic: false },
    });
    expect(off.json).toMatchObject({ node: { isPublic: false } });
    expect(await listed()).not.toContain(node.shortId);
  });
});

describe('service access tokens', () => {
  it('public: anyone; private: owner; shared: named users; others refused', async () => {
    const owner = await makeUser(server);
    const friend = await makeUser(server);
    const stranger = await makeUser(server);
    await server.store.reserveService('photos', owner.user.id, 'private', Date.now());
    const tok = (token?: string) =>
      api(server, 'POST', '/api/services/photos/access-token', token ? { token } : {});
    expect((await tok()).status).toBe(401);
    expect((await tok(owner.token)).status).toBe(200);
    expect((await tok(friend.token)).status).toBe(403);
    expect(
      (
        await api(server, 'PUT', '/api/services/photos/access', {
          token: stranger.token,
          body: { access: 'public' },
        })
      ).status,
    ).toBe(404);
    await api(server, 'PUT', '/api/services/photos/access', {
      token: owner.token,
      body: { access: 'shared' },
    });
    expect(
      (
        await api(server, 'POST', '/api/services/photos/shares', {
          token: owner.token,
          body: { email: friend.user.email },
        })
      ).status,
    ).toBe(201);
    expect((await tok(friend.token)).status).toBe(200);
    expect((await tok(stranger.token)).status).toBe(403);
    await api(server, 'PUT', '/api/services/photos/access', {
      token: owner.token,
      body: { access: 'public' },
    });
    const anon = await tok();
    expect(anon.status).toBe(200);
    expect(anon.headers.get('access-control-allow-origin')).toBe('*');
    expect((await api(server, 'POST', '/api/services/nope/access-token')).json.error.code).toBe(
      'service_unknown',
    );
    const services = await api(server, 'GET', '/api/services', { token: owner.token });
    expect(services.json.services[0]).toMatchObject({
      name: 'photos',
      access: 'public',
      url: expect.stringMatching(/^http:\/\/photos\.localhost:\d+\/$/),
    });
  });
});

describe('admin', () => {
  it('non-admins get no admin data', async () => {
    const plain = await makeUser(server);
    const admin = await makeUser(server, true);
    for (const path of ['/api/admin/users', '/api/admin/nodes', '/api/admin/signaling']) {
      const r = await api(server, 'GET', path, { token: plain.token });
      expect(r.status).toBe(403);
      expect(JSON.stringify(r.json)).not.toContain('@test.invalid');
      expect((await api(server, 'GET', path)).status).toBe(401);
      expect((await api(server, 'GET', path, { token: admin.token })).status).toBe(200);
    }
    expect((await api(server, 'GET', '/healthz')).json).toEqual({ ok: true });
    expect((await api(server, 'GET', '/metrics')).json).toMatch(/peerway_agents_connected/);
  });

  it('the sample Grafana dashboard only queries metrics the server exports', async () => {
    const { readFileSync } = await import('node:fs');
    const dash = JSON.parse(
      readFileSync(new URL('../../infra/grafana/peerway-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels: { targets: { expr: string }[] }[] };
    const exported = new Set(
      [...((await api(server, 'GET', '/metrics')).json as string).matchAll(/^# TYPE (\S+)/gm)].map(
        (m) => m[1]!,
      ),
    );
    const used = new Set(
      dash.panels.flatMap((p) =>
        p.targets.flatMap((t) => [...t.expr.matchAll(/peerway_[a-z_]+/g)].map((m) => m[0])),
      ),
    );
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      expect(exported.has(name) || exported.has(base), name).toBe(true);
    }
    expect(used.size).toBeGreaterThan(10);
  });

  it('the admin signaling view has the hour of per-minute series, TURN and alerts', async () => {
    const admin = await makeUser(server, true);
    const r = await api(server, 'GET', '/api/admin/signaling', { token: admin.token });
    expect(r.json.series.sessions).toHaveLength(60);
    expect(r.json.series.messages.at(-1).at).toBeLessThanOrEqual(Date.now());
    // No TURN configured here: no probes, no coturn figures, and it says so.
    expect(r.json.turn).toMatchObject({ configured: false, probes: [], coturn: null });
    expect(Array.isArray(r.json.alerts)).toBe(true);
  });
});

describe('live updates (SSE)', () => {
  /** Reads `event: snapshot` payloads from /api/events as they come. */
  async function events(token: string, query = '') {
    const ac = new AbortController();
    const res = await fetch(`${server.url}/api/events${query}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: ac.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    return {
      status: res.status,
      async next(): Promise<any> {
        for (;;) {
          const end = buf.indexOf('\n\n');
          if (end >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = /^event: snapshot\ndata: (.*)$/ms.exec(block);
            if (data) return JSON.parse(data[1]!);
            continue;
          }
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          buf += value;
        }
      },
      close: () => ac.abort(),
    };
  }

  it("pushes the user's nodes when they change, and admin figures only to admins", async () => {
    const { token } = await makeUser(server);
    const stream = await events(token, '?admin=1');
    expect(stream.status).toBe(200);
    const first = await stream.next();
    expect(first.nodes).toEqual([]);
    expect(first).not.toHaveProperty('admin');
    // A node of this user connects: the next snapshot has it, online.
    const agent = new FakeAgent(server);
    await agent.handshake({ token });
    const second = await stream.next();
    expect(second.nodes).toHaveLength(1);
    expect(second.nodes[0]).toMatchObject({ shortId: agent.identity.shortId, online: true });
    agent.close();
    const third = await stream.next();
    expect(third.nodes[0].online).toBe(false);
    stream.close();

    const admin = await makeUser(server, true);
    const adminStream = await events(admin.token, '?admin=1');
    expect((await adminStream.next()).admin.series.sessions).toHaveLength(60);
    adminStream.close();
    expect((await fetch(`${server.url}/api/events`)).status).toBe(401);
  });
});

describe('external identity provider (JWKS)', () => {
  it('accepts tokens its JWKS verifies, for the configured issuer and audience only', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const jwksServer = createServer((_req, res) =>
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
    const ext = await withServer({
      authJwksUrl: jwksUrl,
      authIssuer: 'https://idp.test',
      authAudience: 'peerway',
    });
    try {
      const sign = (claims: { iss?: string; aud?: string; exp?: number }, key = privateKey) =>
        new SignJWT({ email: 'ext@test.invalid' })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setSubject('user-42')
          .setIssuer(claims.iss ?? 'https://idp.test')
          .setAudience(claims.aud ?? 'peerway')
          .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 300)
          .sign(key);
      const ok = await api(ext.server, 'GET', '/api/me', { token: await sign({}) });
      expect(ok.status).toBe(200);
      expect(ok.json.user.email).toBe('ext@test.invalid');
      const again = await api(ext.server, 'GET', '/api/me', { token: await sign({}) });
      expect(again.json.user.id).toBe(ok.json.user.id);
      expect(
        (
          await api(ext.server, 'GET', '/api/me', {
            token: await sign({ iss: 'https://evil.test' }),
          })
        ).status,
      ).toBe(401);
      expect(
        (await api(ext.server, 'GET', '/api/me', { token: await sign({ aud: 'other' }) })).status,
      ).toBe(401);
      expect(
        (
          await api(ext.server, 'GET', '/api/me', {
            token: await sign({ exp: Math.floor(Date.now() / 1000) - 60 }),
          })
        ).status,
      ).toBe(401);
      const other = await generateKeyPair('RS256');
      expect(
        (await api(ext.server, 'GET', '/api/me', { token: await sign({}, other.privateKey) }))
          .status,
      ).toBe(401);
      // The dashboard's way in: the provider's JWT exchanged for a session cookie.
      const exchanged = await api(ext.server, 'POST', '/api/auth/external', {
        body: { token: await sign({}) },
      });
      expect(exchanged.status).toBe(200);
      const cookie = exchanged.headers.get('set-cookie')!.split(';')[0]!;
      expect((await api(ext.server, 'GET', '/api/me', { cookie })).json.user.id).toBe(
        ok.json.user.id,
      );
      const forged = await api(ext.server, 'POST', '/api/auth/external', {
        body: { token: await sign({}, other.privateKey) },
      });
      expect(forged.status).toBe(401);
      expect(forged.headers.get('set-cookie')).toBeNull();
      // A server without a provider has no such door.
      expect(
        (await api(server, 'POST', '/api/auth/external', { body: { token: 'x' } })).status,
      ).toBe(404);
    } finally {
      await ext.stop();
      await new Promise((r) => jwksServer.close(r));
    }
  });
});

describe('service origins', () => {
  /** GET on a service origin (Host: <service>.localhost), status and Cache-Control. */
  const onService = (path: string) =>
    new Promise<{ status: number; cache: string | undefined }>((resolve, reject) => {
      const u = new URL(server.url);
      get(
        { host: u.hostname, port: u.port, path, headers: { host: `web.localhost:${u.port}` } },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode!, cache: res.headers['cache-control'] });
        },
      ).on('error', reject);
    });

  it("serve the shell's code-split chunks for good, and nothing beside them", async () => {
    // the shell loads its cookie jar as a separate chunk (npm run build)
    const chunk = readdirSync(join(WEB_DIST, 'chunks')).find((f) => /^cookies-.*\.js$/.test(f));
    expect(chunk).toBeDefined();
    expect(await onService(`/__peerway/chunks/${chunk}`)).toEqual({
      status: 200,
      cache: 'public, max-age=31536000, immutable',
    });
    expect(await onService('/__peerway/shell.js')).toEqual({ status: 200, cache: 'no-cache' });
    expect((await onService('/__peerway/chunks/missing-0000.js')).status).toBe(404);
    expect((await onService('/__peerway/chunks/..%2Fshell.js')).status).toBe(404);
    expect((await onService('/__peerway/chunks/../../package.json')).status).not.toBe(200);
    expect((await onService('/__peerway/chunks/x.txt')).status).toBe(404);
  });
});
