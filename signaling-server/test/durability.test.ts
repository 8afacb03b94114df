/**
 * The server as a real process: create users (CLI and API), claim nodes, set
 * visibility, `kill -9`, start again on the same data directory: all there.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createClaimToken, generateIdentity } from '@peerway/protocol/node';
import { randomEmail, randomPassword } from './helpers';

const BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pw-durable-'));
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startServer(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [BIN, '--port', '0', '--data-dir', dir, '--open-signup'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PEERWAY_LOG_LEVEL: 'warn' },
  });
  procs.push(proc);
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`server did not start: ${out}`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) (clearTimeout(t), res(m[1]!));
    });
    proc.once('exit', (code) => rej(new Error(`server exited ${code}: ${out}`)));
  });
  return { proc, url };
}

async function call(url: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as any };
}

it('everything survives kill -9', async () => {
  const email = randomEmail();
  const password = randomPassword();
  await run(process.execPath, [
    BIN,
    'users',
    'create',
    '--email',
    email,
    '--password',
    password,
    '--admin',
    '--data-dir',
    dir,
  ]);
  const { stdout } = await run(process.execPath, [
    BIN,
    'tokens',
    'create',
    '--email',
    email,
    '--data-dir',
    dir,
  ]);
  const token = stdout.trim();
  expect(token).toMatch(/^pwt_/);

  const first = await startServer();
  expect((await call(first.url, 'GET', '/api/me', token)).json.user).toMatchObject({
    email,
    isAdmin: true,
  });
  const login = await call(first.url, 'POST', '/api/auth/login', undefined, { email, password });
  expect(login.status).toBe(200);
  const nodes = [generateIdentity(), generateIdentity()];
  for (const [i, n] of nodes.entries()) {
    const r = await call(first.url, 'POST', '/api/nodes/claim', token, {
      claimToken: createClaimToken(n, `box-${i}`, Date.now()),
    });
    expect(r.status).toBe(200);
  }
  await call(first.url, 'PUT', `/api/nodes/${nodes[0]!.shortId}/visibility`, token, {
    isPublic: true,
  });
  const second = randomEmail();
  await call(first.url, 'POST', '/api/auth/signup', undefined, { email: second, password });

  first.proc.kill('SIGKILL');
  await new Promise((r) => first.proc.once('exit', r));

  const again = await startServer();
  const mine = (await call(again.url, 'GET', '/api/nodes', token)).json.nodes as {
    shortId: string;
    name: string;
    isPublic: boolean;
  }[];
  expect(mine.map((n) => [n.shortId, n.name, n.isPublic]).sort()).toEqual(
    [
      [nodes[0]!.shortId, 'box-0', true],
      [nodes[1]!.shortId, 'box-1', false],
    ].sort(),
  );
  expect(
    (await call(again.url, 'GET', '/api/nodes/public')).json.nodes.map(
      (n: { shortId: string }) => n.shortId,
    ),
  ).toEqual([nodes[0]!.shortId]);
  expect(
    (await call(again.url, 'POST', '/api/auth/login', undefined, { email: second, password }))
      .status,
  ).toBe(200);
  expect((await call(again.url, 'GET', '/api/admin/users', token)).json.users).toHaveLength(2);
  again.proc.kill('SIGTERM');
  await new Promise((r) => again.proc.once('exit', r));
}, 90_000);

it('the CLI refuses bad input with a clear message and a non-zero exit', async () => {
  await expect(
    run(process.execPath, [
      BIN,
      'tokens',
      'create',
      '--email',
      'nobody@test.invalid',
      '--data-dir',
      dir,
    ]),
  ).rejects.toMatchObject({
    stderr: expect.stringMatching(/no user nobody@test.invalid/),
  });
  await expect(
    run(process.execPath, [BIN, '--port', 'banana', '--data-dir', dir]),
  ).rejects.toMatchObject({ stderr: expect.stringMatching(/invalid server option port/) });
});
