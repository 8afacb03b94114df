/**
 * Browser-side hardening, over real HTTP: the session cookie is
 * `__Host-`prefixed wherever a browser can keep it that way (and the server
 * says so when it cannot), gateway responses refuse to be framed, and
 * service origins may be framed by themselves only (the shell frames its app).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { api, withServer, makePasswordUser } from './helpers';
import { sessionCookie } from '../src/auth/auth';
import type { PeerwayServer } from '../src/server';

const SERVER_BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');

/** Signs in over HTTP; the Set-Cookie header the server sent. */
async function signIn(server: PeerwayServer): Promise<string> {
  const r = await api(server, 'POST', '/api/auth/login', { body: await makePasswordUser(server) });
  expect(r.status).toBe(200);
  return r.headers.get('set-cookie')!;
}

/** The attributes of one Set-Cookie header, lower-cased names. */
function attributes(setCookie: string): Map<string, string> {
  const [, ...parts] = setCookie.split(';').map((p) => p.trim());
  return new Map(
    parts.map((p) => {
      const [k, ...v] = p.split('=');
      return [k!.toLowerCase(), v.join('=')] as const;
    }),
  );
}

describe('the session cookie', () => {
  let ctx: Awaited<ReturnType<typeof withServer>>;
  beforeAll(async () => {
    ctx = await withServer();
  });
  afterAll(() => ctx.stop());

  it('is __Host-pw_session on a localhost gateway: Secure, Path=/, HttpOnly, no Domain', async () => {
    const set = await signIn(ctx.server);
    expect(set).toMatch(/^__Host-pw_session=[^;]+;/);
    const a = attributes(set);
    expect(a.has('secure')).toBe(true);
    expect(a.get('path')).toBe('/');
    expect(a.has('httponly')).toBe(true);
    expect(a.get('samesite')?.toLowerCase()).toBe('lax');
    expect(a.has('domain')).toBe(false);
  });

  it('is read under that name only, and cleared with the attributes a browser needs', async () => {
    const set = await signIn(ctx.server);
    const value = set.split(';')[0]!.split('=').slice(1).join('=');
    const cookie = `__Host-pw_session=${value}`;
    expect((await api(ctx.server, 'GET', '/api/me', { cookie })).status).toBe(200);
    // the old name carries nothing any more
    expect(
      (await api(ctx.server, 'GET', '/api/me', { cookie: `pw_session=${value}` })).status,
    ).toBe(401);
    const out = await api(ctx.server, 'POST', '/api/auth/logout', { cookie });
    const cleared = out.headers.get('set-cookie')!;
    expect(cleared).toMatch(/^__Host-pw_session=;/);
    // a browser drops a __Host- Set-Cookie without Secure and Path=/: the cookie would stay
    expect(attributes(cleared).has('secure')).toBe(true);
    expect(attributes(cleared).get('path')).toBe('/');
    expect((await api(ctx.server, 'GET', '/api/me', { cookie })).status).toBe(401);
  });

  it('is __Host- on an https gateway', async () => {
    const https = await withServer({ publicUrl: 'https://gw.example' });
    try {
      const set = await signIn(https.server);
      expect(set).toMatch(/^__Host-pw_session=/);
      expect(attributes(set).has('secure')).toBe(true);
    } finally {
      await https.stop();
    }
  });

  it('is plain pw_session without Secure on a plain-http made-up host, which a browser could not keep otherwise', async () => {
    const lab = await withServer({ publicUrl: 'http://gw.test:8080', baseDomain: 'gw.test' });
    try {
      const set = await signIn(lab.server);
      expect(set).toMatch(/^pw_session=/);
      expect(attributes(set).has('secure')).toBe(false);
      expect(attributes(set).has('domain')).toBe(false);
    } finally {
      await lab.stop();
    }
  });

  it('the rule: https or a loopback host gets __Host-, anything else on http does not', () => {
    for (const url of [
      'https://peerway.example',
      'https://gw.localhost',
      'http://localhost:8080',
      'http://gw.localhost:8080',
      'http://127.0.0.1:8080',
      'http://[::1]:8080',
    ])
      expect(sessionCookie(url), url).toEqual({ name: '__Host-pw_session', secure: true });
    for (const url of ['http://gw.test:8080', 'http://192.0.2.10', 'http://localhost.evil.example'])
      expect(sessionCookie(url), url).toEqual({ name: 'pw_session', secure: false });
  });

  it('a server on a plain-http public host warns at start that real deployments need HTTPS', async () => {
    const dir = (await import('node:fs')).mkdtempSync(
      join((await import('node:os')).tmpdir(), 'pw-'),
    );
    const child = spawn(
      process.execPath,
      [
        SERVER_BIN,
        '--port',
        '0',
        '--data-dir',
        dir,
        '--public-url',
        'http://gw.test:8080',
        '--base-domain',
        'gw.test',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PEERWAY_LOG_LEVEL: 'info', VITEST: '' },
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await expect.poll(() => out, { timeout: 20_000, interval: 50 }).toMatch(/listening/);
      expect(out).toMatch(/real deployments need HTTPS/);
    } finally {
      child.kill('SIGTERM');
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('framing', () => {
  let ctx: Awaited<ReturnType<typeof withServer>>;
  let port: string;
  beforeAll(async () => {
    ctx = await withServer();
    port = new URL(ctx.server.url).port;
  });
  afterAll(() => ctx.stop());

  const head = (path: string, host: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>(
      (resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path, method: 'GET', headers: { host, ...headers } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          },
        );
        req.on('error', reject);
        req.end();
      },
    );

  it.each([
    '/',
    '/nodes',
    '/admin',
    '/add-node',
    '/signin?next=%2F',
    '/signup',
    '/authorize?service=nothing',
    '/api/me',
    '/api/nope',
    '/healthz',
    '/metrics',
  ])('the gateway refuses to be framed: %s', async (path) => {
    const r = await head(path, `localhost:${port}`, { 'sec-fetch-dest': 'document' });
    expect(r.headers['content-security-policy']).toBe("frame-ancestors 'none'");
    expect(r.headers['x-frame-options']).toBe('DENY');
  });

  it.each(['/', '/deep/link?x=1', '/__peerway/callback', '/__peerway/shell.js'])(
    'a service origin may frame itself, no one else: %s',
    async (path) => {
      const r = await head(path, `vault.localhost:${port}`, { 'sec-fetch-dest': 'document' });
      expect(r.status).toBe(200);
      expect(r.headers['content-security-policy']).toBe("frame-ancestors 'self'");
      expect(r.headers['x-frame-options']).toBeUndefined();
    },
  );
});
