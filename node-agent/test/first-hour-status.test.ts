/**
 * `login` and `status` as a node owner meets them (the real bin, a real
 * server): login checks the token's form and asks the server before saving
 * it, and claims the node at once, so `status` is right straight after;
 * `status` tells what a running agent serves even when it was started with
 * flags only, and which config services it does not serve yet.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PeerwayServer } from '@peerway/signaling-server';
import { Fixture } from './helpers';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');
const fx = new Fixture();
let server: PeerwayServer;
let appPort: number;
afterAll(() => fx.cleanup());
beforeAll(async () => {
  server = await fx.server();
  const app = createHttpServer((_q, r) => r.end('ok')).listen(0, '127.0.0.1');
  await once(app, 'listening');
  fx.onCleanup(() => void app.close());
  appPort = (app.address() as AddressInfo).port;
});

const agentCli = (home: string, args: string[]) =>
  run(process.execPath, [BIN, ...args], {
    env: { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'silent' },
    timeout: 30_000,
  });
const savedToken = (home: string) =>
  existsSync(join(home, 'config.json'))
    ? (JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { token?: string }).token
    : undefined;

it('login refuses what is not a token, and a token the server does not know; saves neither', async () => {
  const home = fx.tmp('pw-first-');
  await agentCli(home, ['init', '--server', server.config.publicUrl]);
  await expect(agentCli(home, ['login', 'not-a-token'])).rejects.toMatchObject({
    stderr: expect.stringMatching(/"not-a-token" is not an access token: they look like pwt_/),
  });
  await expect(
    agentCli(home, ['login', `pwt_${'0'.repeat(12)}_${'A'.repeat(32)}`]),
  ).rejects.toMatchObject({
    stderr: expect.stringMatching(
      /token rejected by http:\S+: .*get a new one from the dashboard and run `peerway-agent login TOKEN`/,
    ),
  });
  expect(savedToken(home)).toBeUndefined();
}, 60_000);

it('after login, status says at once that the node is claimed, and for whom', async () => {
  const home = fx.tmp('pw-first-');
  const { user, token } = await fx.user(server);
  await agentCli(home, ['init', '--server', server.config.publicUrl, '--name', 'den']);
  const login = await agentCli(home, ['login', token]);
  expect(login.stdout).toMatch(
    new RegExp(`Logged in as ${user.email}: node [0-9a-f]{6} \\(den\\) is now claimed`),
  );
  expect(savedToken(home)).toBe(token);
  const status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(new RegExp(`logged in yes, as ${user.email}`));
  expect(status).toMatch(/claimed\s+yes/);
  expect(status).toMatch(/online\s+no/);
  expect(status).toMatch(/running\s+no/);
}, 60_000);

it('status shows a run started with flags only, and what a later expose still needs', async () => {
  const { user, token } = await fx.user(server);
  const home = fx.tmp('pw-first-');
  const agent = await fx.agent({
    serverUrl: server.config.publicUrl,
    token,
    home,
    services: [`flagged=127.0.0.1:${appPort}`],
    waitFor: /✓ http:\/\/flagged\./,
  });
  let status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(/server\s+http:\S+\s+\(the running agent's --server\)/);
  expect(status).toMatch(new RegExp(`running\\s+yes, pid ${agent.proc.pid}, connected`));
  expect(status).toMatch(
    new RegExp(
      `service\\s+flagged → http://127\\.0\\.0\\.1:${appPort}\\s+\\(the running agent's --service\\)`,
    ),
  );
  expect(status).toMatch(new RegExp(`logged in yes, as ${user.email}`));
  expect(status).toMatch(/claimed\s+yes/);
  expect(status).toMatch(/online\s+yes/);
  expect(status).toMatch(/url\s+flagged: http:\/\/flagged\./);

  const expose = await agentCli(home, ['expose', 'later', '3000']);
  expect(expose.stdout).toMatch(/restart `peerway-agent run` to serve later/);
  status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(
    /service\s+later → http:\/\/127\.0\.0\.1:3000\s+\(not served by the running agent/,
  );

  await agent.kill();
  status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(/running\s+no/);
  expect(existsSync(join(home, 'run.json'))).toBe(false);
}, 90_000);
