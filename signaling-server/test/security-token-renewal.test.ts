/**
 * Short service access tokens, renewed on the service origin, over real
 * HTTP: /authorize hands a shell a token of minutes and a renewal credential;
 * POST /__peerway/token renews only while the user still has the right, and
 * refuses at once when the owner takes a share back or makes the service
 * private.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { decodeJwt } from 'jose';
import { importServerKey, verifyServiceAccessToken } from '@peerway/protocol/node';
import { api, makeUser, withServer } from './helpers';
import type { PeerwayServer } from '../src/server';
import { RENEW_CREDENTIAL_TTL_S, SERVICE_TOKEN_TTL_S } from '../src/web/service-token';
import { sessionCookie } from '../src/auth/auth';

let ctx: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
let port: string;
let owner: Awaited<ReturnType<typeof makeUser>>;
let friend: Awaited<ReturnType<typeof makeUser>>;
let stranger: Awaited<ReturnType<typeof makeUser>>;
beforeAll(async () => {
  ctx = await withServer();
  server = ctx.server;
  port = new URL(server.url).port;
  [owner, friend, stranger] = [
    await makeUser(server),
    await makeUser(server),
    await makeUser(server),
  ];
  for (const name of ['vault', 'album', 'other', 'notes'])
    await server.store.reserveService(name, owner.user.id, 'private', Date.now());
  await server.store.setServiceAccess('album', 'public');
});
afterAll(() => ctx.stop());

/** A request with a Host of our choosing (Node does not resolve *.localhost). */
function send(
  method: string,
  path: string,
  opts: { host?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<{ status: number; location?: string; json: any }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        headers: { host: opts.host ?? `localhost:${port}`, ...opts.headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          let json: any = text;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The token and renewal credential /authorize hands `user`'s shell for `service`. */
async function authorize(service: string, token: string) {
  const r = await send('GET', `/authorize?service=${service}&return=%2F`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(r.status, JSON.stringify(r.json).slice(0, 200)).toBe(302);
  const fragment = new URLSearchParams(new URL(r.location!).hash.slice(1));
  return { token: fragment.get('token')!, renew: fragment.get('renew') };
}

/** What the shell does when its token is near expiry. */
function renew(service: string, credential: unknown) {
  return send('POST', '/__peerway/token', {
    host: `${service}.localhost:${port}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ renew: credential }),
  });
}

async function claims(service: string, token: string) {
  const publicKey = await importServerKey(server.keys.accessPublicJwk);
  return verifyServiceAccessToken(token, {
    publicKey,
    issuer: decodeJwt(token).iss!,
    service,
  });
}

describe('service access tokens', () => {
  it('/authorize hands out a token of minutes, and a renewal credential of hours', async () => {
    const { token, renew: credential } = await authorize('vault', owner.token);
    const t = decodeJwt(token);
    expect(t.exp! - t.iat!).toBe(SERVICE_TOKEN_TTL_S);
    expect(SERVICE_TOKEN_TTL_S).toBeLessThanOrEqual(300);
    expect(credential).toBeTruthy();
    const c = decodeJwt(credential!);
    expect(c.typ).toBe('renew');
    expect(c.sub).toBe(owner.user.id);
    expect(c.aud).toBe('peerway:renew:vault');
    expect(c.exp! - c.iat!).toBe(RENEW_CREDENTIAL_TTL_S);
  });

  it('the owner renews on the service origin and gets a fresh private token', async () => {
    const { renew: credential } = await authorize('vault', owner.token);
    const r = await renew('vault', credential);
    expect(r.status).toBe(200);
    const c = await claims('vault', r.json.token);
    expect(c).toMatchObject({ service: 'vault', subject: owner.user.id, access: 'private' });
    expect(c.expiresAt - Date.now()).toBeLessThanOrEqual(SERVICE_TOKEN_TTL_S * 1000);
  });

  it('renewal stops when the gateway session it came from signs out', async () => {
    const cookie = `${sessionCookie(server.config.publicUrl).name}=${await server.auth.sessionToken(owner.user)}`;
    const r = await send('GET', '/authorize?service=vault&return=%2F', { headers: { cookie } });
    expect(r.status).toBe(302);
    const credential = new URLSearchParams(new URL(r.location!).hash.slice(1)).get('renew');
    expect(decodeJwt(credential!).sid).toBeTruthy();
    expect((await renew('vault', credential)).status).toBe(200);
    const out = await send('POST', '/api/auth/logout', { headers: { cookie } });
    expect(out.status).toBe(200);
    expect((await renew('vault', credential)).status).toBe(401);
  });

  it('renewal stops at once when the owner takes the share back', async () => {
    expect(
      (
        await api(server, 'PUT', '/api/services/notes/access', {
          token: owner.token,
          body: { access: 'shared' },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await api(server, 'POST', '/api/services/notes/shares', {
          token: owner.token,
          body: { email: friend.user.email },
        })
      ).status,
    ).toBe(201);
    const { renew: credential } = await authorize('notes', friend.token);
    const before = await renew('notes', credential);
    expect(before.status).toBe(200);
    expect((await claims('notes', before.json.token)).subject).toBe(friend.user.id);

    const removed = await api(
      server,
      'DELETE',
      `/api/services/notes/shares/${encodeURIComponent(friend.user.email)}`,
      { token: owner.token },
    );
    expect(removed.status).toBe(200);
    const after = await renew('notes', credential);
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe('unauthorized');
    expect(after.json.authorize).toContain('/authorize?service=notes');
    // and the owner's own renewal is untouched
    expect((await renew('notes', (await authorize('notes', owner.token)).renew)).status).toBe(200);
  });

  it('renewal stops at once when the owner makes a shared service private', async () => {
    await api(server, 'PUT', '/api/services/vault/access', {
      token: owner.token,
      body: { access: 'shared' },
    });
    await api(server, 'POST', '/api/services/vault/shares', {
      token: owner.token,
      body: { email: friend.user.email },
    });
    const { renew: credential } = await authorize('vault', friend.token);
    expect((await renew('vault', credential)).status).toBe(200);
    const priv = await api(server, 'PUT', '/api/services/vault/access', {
      token: owner.token,
      body: { access: 'private' },
    });
    expect(priv.status).toBe(200);
    // the share is still in the store, but under "private" it gives no right
    expect((await renew('vault', credential)).status).toBe(401);
    // /authorize agrees: the friend is refused there too
    const again = await send('GET', '/authorize?service=vault&return=%2F', {
      headers: { authorization: `Bearer ${friend.token}` },
    });
    expect(again.status).toBe(403);
  });

  it('a credential opens only its own service, and is nothing else', async () => {
    const { renew: credential } = await authorize('vault', owner.token);
    // for another service of the same owner: refused
    expect((await renew('other', credential)).status).toBe(401);
    // not a gateway session, not a bearer token
    expect((await api(server, 'GET', '/api/me', { token: credential! })).status).toBe(401);
    // a session JWT of this server is not a renewal credential
    const session = await server.auth.sessionToken(owner.user);
    expect((await renew('vault', session)).status).toBe(401);
    // nor is a service access token, or something forged
    expect((await renew('vault', (await authorize('vault', owner.token)).token)).status).toBe(401);
    const [h, , s] = credential!.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...decodeJwt(credential!), sub: stranger.user.id }),
    ).toString('base64url');
    expect((await renew('vault', `${h}.${forged}.${s}`)).status).toBe(401);
    expect((await renew('vault', 42)).status).toBe(401);
    // without any credential, a private service gives nothing
    const none = await send('POST', '/__peerway/token', { host: `vault.localhost:${port}` });
    expect(none.status).toBe(401);
    // a body that is not JSON is a clear 400
    const bad = await send('POST', '/__peerway/token', {
      host: `vault.localhost:${port}`,
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/renew/);
  });

  it('a public service gives anyone a short public token, with or without a stale credential', async () => {
    const anon = await send('POST', '/__peerway/token', { host: `album.localhost:${port}` });
    expect(anon.status).toBe(200);
    const c = await claims('album', anon.json.token);
    expect(c).toMatchObject({ subject: 'anonymous', access: 'public' });
    expect(decodeJwt(anon.json.token).exp! - decodeJwt(anon.json.token).iat!).toBe(
      SERVICE_TOKEN_TTL_S,
    );
    const stale = await renew('album', 'not-a-credential');
    expect(stale.status).toBe(200);
    expect((await claims('album', stale.json.token)).access).toBe('public');
  });
});
