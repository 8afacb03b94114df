/**
 * Safe defaults and safe configuration (issue 17, item 8), against real
 * servers and the real CLI: sign-up closed unless asked for, no gateway on
 * a service origin, no gateway for Host names it was not given (DNS
 * rebinding), a guarded /metrics, private data files, logout that revokes a
 * bearer session, and personal access tokens that expire and can be listed
 * and revoked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  ManualClock,
  api,
  randomEmail,
  randomPassword,
  withServer,
  makePasswordUser,
} from './helpers';
import { configFromEnv, parseConfig } from '../src/config';
import type { PeerwayServer } from '../src/server';
import { TOKEN_CACHE_MS } from '../src/auth/token-cache';

const BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');
const run = promisify(execFile);
const DAY_MS = 24 * 3600 * 1000;

/** A GET with a Host header of our choosing (fetch will not send one). */
function getWithHost(server: PeerwayServer, path: string, host: string) {
  const { port } = new URL(server.url);
  return new Promise<{ status: number; body: string }>((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

describe('open sign-up', () => {
  it('is off by default, and on only when asked for (flag or PEERWAY_OPEN_SIGNUP)', async () => {
    expect(parseConfig({}).openSignup).toBe(false);
    expect(parseConfig(configFromEnv({ PEERWAY_OPEN_SIGNUP: 'true' })).openSignup).toBe(true);
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    expect(stdout).toMatch(/--open-signup/);
    expect(stdout).toMatch(/PEERWAY_OPEN_SIGNUP/);
    expect(stdout).toMatch(/--metrics-token/);

    const ctx = await withServer();
    try {
      const invite = new URL(ctx.server.adminInvite!).searchParams.get('invite')!;
      const admin = await api(ctx.server, 'POST', '/api/auth/signup', {
        body: { email: randomEmail(), password: randomPassword(), invite },
      });
      expect(admin.status).toBe(201);
      const stranger = await api(ctx.server, 'POST', '/api/auth/signup', {
        body: { email: randomEmail(), password: randomPassword() },
      });
      expect(stranger.status).toBe(403);
      expect(stranger.json.error.message).toMatch(/invitation only/);
      // and the sign-in page does not lead to a sign-up that would refuse
      const page = await api(ctx.server, 'GET', '/signin');
      expect(page.json).toMatch(/by invitation/);
      expect(page.json).not.toMatch(/href="\/signup/);
    } finally {
      await ctx.stop();
    }
    const open = await withServer({ openSignup: true });
    try {
      expect((await api(open.server, 'GET', '/signin')).json).toMatch(/href="\/signup/);
    } finally {
      await open.stop();
    }
  });
});

describe('the public URL', () => {
  it('may not be a service origin: the config says so, and the server does not start', async () => {
    expect(() =>
      parseConfig({ publicUrl: 'http://gw.localhost:8080', baseDomain: 'localhost' }),
    ).toThrow(/publicUrl: its host gw\.localhost is itself a service origin.*"gw"/);
    expect(() =>
      parseConfig({ publicUrl: 'https://gw.example.com', baseDomain: 'example.com' }),
    ).toThrow(/service origin/);
    // the base domain itself, or a host outside it, is fine
    expect(
      parseConfig({ publicUrl: 'http://lab.test:8080', baseDomain: 'lab.test' }).publicUrl,
    ).toBe('http://lab.test:8080');
    expect(parseConfig({ publicUrl: 'http://localhost:8080' }).publicUrl).toBe(
      'http://localhost:8080',
    );
    const dir = mkdtempSync(join(tmpdir(), 'pw-cfg-'));
    try {
      const r = await run(
        process.execPath,
        [BIN, '--port', '0', '--data-dir', dir, '--public-url', 'http://gw.localhost:8080'],
        { timeout: 30_000 },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/gw\.localhost is itself a service origin/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Host names (DNS rebinding)', () => {
  let ctx: Awaited<ReturnType<typeof withServer>>;
  beforeAll(async () => {
    ctx = await withServer({
      publicUrl: 'http://gw.test:8080',
      allowedHosts: 'alias.test,[2001:db8::5]',
    });
  });
  afterAll(() => ctx.stop());

  it('the gateway answers its public host, loopback and configured names, on any port', async () => {
    for (const host of [
      'gw.test:8080',
      'GW.test',
      'alias.test:443',
      '[2001:db8::5]:8080',
      'localhost:1234',
      '127.0.0.1',
      '[::1]:8080',
    ]) {
      expect((await getWithHost(ctx.server, '/healthz', host)).status, host).toBe(200);
      expect((await getWithHost(ctx.server, '/api/me', host)).status, host).toBe(401);
    }
  });

  it('any other Host gets 421, and service hosts still get the service router', async () => {
    for (const host of [
      'evil.example',
      'gw.test.evil.example',
      '192.168.1.10:8080',
      '[2001:db8::6]',
      'x',
    ]) {
      const r = await getWithHost(ctx.server, '/api/me', host);
      expect(r.status, host).toBe(421);
      expect(r.body).toMatch(/does not answer for the host/);
    }
    // a service origin is the service router's (the shell, never the gateway)
    const svc = await getWithHost(ctx.server, '/api/me', 'blog.localhost:8080');
    expect(svc.status).not.toBe(421);
  });

  it('a WebSocket upgrade for an unknown Host is refused 421 and closed', async () => {
    const { port } = new URL(ctx.server.url);
    const heard = await new Promise<string>((res) => {
      const s = connect(Number(port), '127.0.0.1');
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => res(out));
      s.on('error', () => {});
      s.write(
        'GET /ws/client HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    });
    expect(heard).toMatch(/^HTTP\/1\.1 421 /);
  });
});

describe('/metrics', () => {
  it('needs the bearer metrics token when one is set', async () => {
    const token = 'metrics-' + randomPassword();
    const ctx = await withServer({ metricsToken: token });
    try {
      const get = (authorization?: string) =>
        fetch(ctx.server.url + '/metrics', {
          headers: authorization ? { authorization } : {},
        });
      expect((await get()).status).toBe(401);
      expect((await get(`Bearer ${token}x`)).status).toBe(401);
      expect((await get(`Bearer ${token.slice(0, -1)}`)).status).toBe(401);
      expect((await get(token)).status).toBe(401);
      const ok = await get(`Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/peerway_/);
    } finally {
      await ctx.stop();
    }
    expect(() => parseConfig({ metricsToken: 'short' })).toThrow(/at least 16/);
  });
});

describe('data files', () => {
  it('the data dir is 0700 and the SQLite files (with the keys) 0600, also for an older install', async () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    const fresh = await withServer();
    try {
      await fresh.server.store.createUser({
        email: randomEmail(),
        passwordHash: null,
        isAdmin: false,
        externalSubject: null,
      });
      expect(mode(fresh.dir)).toBe(0o700);
      for (const f of ['peerway.db', 'peerway.db-wal', 'peerway.db-shm'])
        expect(mode(join(fresh.dir, f)), f).toBe(0o600);
    } finally {
      await fresh.stop();
    }
    // An install from before: a world-readable dir and file.
    const parent = mkdtempSync(join(tmpdir(), 'pw-old-'));
    const dir = join(parent, 'data');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'peerway.db'), '');
    chmodSync(join(dir, 'peerway.db'), 0o644);
    const old = await withServer({ dataDir: dir });
    try {
      expect(mode(dir)).toBe(0o700);
      expect(mode(join(dir, 'peerway.db'))).toBe(0o600);
    } finally {
      await old.stop();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('sessions and personal access tokens', () => {
  const clock = new ManualClock();
  let ctx: Awaited<ReturnType<typeof withServer>>;
  let server: PeerwayServer;
  beforeAll(async () => {
    ctx = await withServer({}, { clock });
    server = ctx.server;
  });
  afterAll(() => ctx.stop());

  it('logout with the session token as a bearer revokes it', async () => {
    const { email, password } = await makePasswordUser(server);
    const login = await api(server, 'POST', '/api/auth/login', { body: { email, password } });
    expect(login.status).toBe(200);
    const session = /^[^=]+=([^;]+)/.exec(login.headers.get('set-cookie')!)![1]!;
    expect((await api(server, 'GET', '/api/me', { token: session })).status).toBe(200);
    expect((await api(server, 'POST', '/api/auth/logout', { token: session })).status).toBe(200);
    expect((await api(server, 'GET', '/api/me', { token: session })).status).toBe(401);
  });

  it('a token made to expire shows its expiry and stops working then', async () => {
    const { email, password } = await makePasswordUser(server);
    const login = await api(server, 'POST', '/api/auth/login', { body: { email, password } });
    const session = /^[^=]+=([^;]+)/.exec(login.headers.get('set-cookie')!)![1]!;
    const made = await api(server, 'POST', '/api/tokens', {
      token: session,
      body: { name: 'ci', expiresInDays: 30 },
    });
    expect(made.status).toBe(201);
    expect(made.json.expiresAt).toBe(clock.now() + 30 * DAY_MS);
    const forever = await api(server, 'POST', '/api/tokens', {
      token: session,
      body: { name: 'x' },
    });
    expect(forever.json.expiresAt).toBeNull();
    const list = await api(server, 'GET', '/api/tokens', { token: made.json.token });
    expect(list.json.tokens).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: made.json.id, name: 'ci', expiresAt: made.json.expiresAt }),
        expect.objectContaining({ id: forever.json.id, expiresAt: null }),
      ]),
    );
    for (const bad of [0, -1, 1.5, 10_000, '30'])
      expect(
        (
          await api(server, 'POST', '/api/tokens', {
            token: session,
            body: { name: 'bad', expiresInDays: bad },
          })
        ).status,
        String(bad),
      ).toBe(400);
    clock.advance(30 * DAY_MS - 1);
    expect((await api(server, 'GET', '/api/me', { token: made.json.token })).status).toBe(200);
    clock.advance(1);
    expect((await api(server, 'GET', '/api/me', { token: made.json.token })).status).toBe(401);
    expect((await api(server, 'GET', '/api/me', { token: forever.json.token })).status).toBe(200);
  });
});

describe('personal access tokens from the CLI', () => {
  let ctx: Awaited<ReturnType<typeof withServer>>;
  let server: PeerwayServer;
  beforeAll(async () => {
    ctx = await withServer();
    server = ctx.server;
  });
  afterAll(() => ctx.stop());

  it('the CLI makes a token with --expires-in, lists it and revokes it', async () => {
    const { email } = await makePasswordUser(server);
    const cli = (...args: string[]) =>
      run(process.execPath, [BIN, 'tokens', ...args, '--email', email, '--data-dir', ctx.dir], {
        timeout: 30_000,
        env: { ...process.env, PEERWAY_LOG_LEVEL: 'silent' },
      }).then((r) => r.stdout.trim());
    const token = await cli('create', '--name', 'deploy', '--expires-in', '30d');
    expect(token).toMatch(/^pwt_/);
    expect((await api(server, 'GET', '/api/me', { token })).status).toBe(200);
    const listed = JSON.parse(await cli('list', '--json')) as {
      id: string;
      name: string;
      expiresAt: number | null;
    }[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).not.toHaveProperty('tokenHash');
    expect(listed[0]!.name).toBe('deploy');
    expect(listed[0]!.expiresAt! - Date.now()).toBeGreaterThan(29 * DAY_MS);
    expect(await cli('list')).toMatch(new RegExp(`^${listed[0]!.id}\\tdeploy\\t`, 'm'));
    expect(await cli('revoke', listed[0]!.id)).toMatch(/revoked/);
    // Another process revoked it: the server may have it resolved for up to
    // TOKEN_CACHE_MS more (a revoke through the API is at once: http.test.ts).
    const until = Date.now() + TOKEN_CACHE_MS + 1000;
    let status = 0;
    while ((status = (await api(server, 'GET', '/api/me', { token })).status) !== 401)
      if (Date.now() > until) break;
      else await new Promise((r) => setTimeout(r, 100));
    expect(status).toBe(401);
    await expect(cli('revoke', listed[0]!.id)).rejects.toMatchObject({
      stderr: expect.stringMatching(/has no token/),
    });
    await expect(cli('create', '--expires-in', 'soon')).rejects.toMatchObject({
      stderr: expect.stringMatching(/like 30d or 12h/),
    });
  });
});
