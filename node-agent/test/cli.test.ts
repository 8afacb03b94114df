/**
 * The agent CLI as a user runs it: init, expose, login, status, claim-url
 * write and read $PEERWAY_HOME; `run` starts even when the server is not up
 * yet and connects once it is (reconnect with backoff from the first try).
 */
import { afterAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import { verifyClaimToken } from '@peerway/protocol/node';
import { Fixture } from './helpers';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');
const fx = new Fixture();
afterAll(() => fx.cleanup());

/** A token of the right form that no server made. */
const TOKEN_FORM = `pwt_${'0'.repeat(12)}_${'A'.repeat(32)}`;

const agentCli = (home: string, args: string[]) =>
  run(process.execPath, [BIN, ...args], { env: { ...process.env, PEERWAY_HOME: home } });

it('init, expose, login, status and claim-url keep a valid home', async () => {
  const home = fx.tmp('pw-cli-');
  await agentCli(home, ['init', '--server', 'http://127.0.0.1:9', '--name', 'attic']);
  await agentCli(home, ['expose', 'wiki', '3000', '--public']);
  await agentCli(home, ['expose', 'wiki', 'localhost:4000']); // replaces
  await agentCli(home, ['login', TOKEN_FORM]); // its server is not up: saved unchecked
  const cfg = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'));
  expect(cfg).toMatchObject({
    server: 'http://127.0.0.1:9',
    name: 'attic',
    token: TOKEN_FORM,
    services: [{ name: 'wiki', target: 'http://localhost:4000', public: false }],
  });
  expect(statSync(join(home, 'agent.json')).mode & 0o777).toBe(0o600);
  const status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(/node\s+[0-9a-f]{6}\s+\(attic\)/);
  expect(status).toMatch(/reachable no/);
  const url = (await agentCli(home, ['claim-url'])).stdout.trim();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:9\/add-node#claim=pwc1\./);
  expect(verifyClaimToken(url.split('#claim=')[1]!, Date.now()).name).toBe('attic');
  await expect(agentCli(home, ['expose', 'Bad_Name', '3000'])).rejects.toMatchObject({
    stderr: expect.stringMatching(/DNS label/),
  });
});

it('run waits for a server that is not up yet, then connects', async () => {
  // a free port, released again before the agent starts
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
  const pending = fx.agent({
    serverUrl: `http://localhost:${port}`,
    services: ['later=127.0.0.1:9'],
    waitFor: /full link: /,
    extraArgs: ['--qr'],
  });
  await new Promise((r) => setTimeout(r, 1500)); // its first attempts fail
  await fx.server({ port });
  const agent = await pending;
  // the short ID comes first, before any connection
  expect(agent.stdout).toMatch(/^Node [0-9a-f]{6} \(.+\): connecting to/);
  expect(agent.stdout).toMatch(/Connected to http:\/\/localhost:\d+ as node [0-9a-f]{6}/);
  expect(agent.stdout).toMatch(new RegExp(`http://localhost:${port}/c/\\S+`));
  expect(agent.stdout).toMatch(
    new RegExp(`full link: http://localhost:${port}/add-node#claim=pwc1\\.`),
  );
  await agent.waitFor(/[▀▄█]{10}/, 5000); // the QR code
}, 60_000);

it('status asks the server whether the node is claimed and where its services are', async () => {
  const server = await fx.server();
  const { token } = await fx.user(server);
  const home = fx.tmp('pw-cli-');
  await agentCli(home, ['init', '--server', server.config.publicUrl, '--name', 'den']);
  const app = createHttpServer((_q, r) => r.end('wiki')).listen(0, '127.0.0.1');
  await once(app, 'listening');
  fx.onCleanup(() => void app.close());
  await agentCli(home, ['expose', 'den-wiki', `127.0.0.1:${(app.address() as AddressInfo).port}`]);
  let status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(/reachable yes/);
  expect(status).toMatch(/claimed\s+no — open http:.*\/add-node#claim=pwc1\./);
  await agentCli(home, ['login', token]);
  const agent = await fx.agent({ serverUrl: server.config.publicUrl, home, services: [] });
  expect(agent.stdout).toMatch(/owned by/);
  status = (await agentCli(home, ['status'])).stdout;
  expect(status).toMatch(/claimed\s+yes/);
  expect(status).toMatch(/online\s+yes/);
  expect(status).toMatch(/url\s+den-wiki: http:\/\/den-wiki\./);
}, 60_000);
