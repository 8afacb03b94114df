/**
 * The admin view's TURN health against real coturn reporting to a real
 * redis-server (redis-statsdb): the probe allocates with fresh REST
 * credentials and reports its round trip; coturn's own reports show an
 * allocation while it lives; a wrong secret and a dead port are told apart.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createTurnClient } from 'werift';
import { TurnMonitor, parseTurnUrl, release, turnCredentials } from '@peerway/signaling-server';
import { startTurn, type TurnProcess } from '../../infra/turn/turn-process';
import { Proc } from '../support/stack';

const secret = randomBytes(24).toString('base64url');
const port = 20000 + Math.floor(Math.random() * 20000);
const redisPort = port + 100;
const dir = mkdtempSync(join(tmpdir(), 'pw-turnmon-'));
let turn: TurnProcess;
let redis: Proc;
const monitors: TurnMonitor[] = [];
const log = pino({ level: 'silent' });

beforeAll(async () => {
  redis = new Proc(
    spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  await redis.waitFor(/Ready to accept connections/);
  turn = await startTurn({
    secrets: [secret],
    listeningIps: ['127.0.0.1'],
    relayIps: ['127.0.0.1'],
    port,
    minPort: port + 1,
    maxPort: port + 50,
    redisStatsDb: { host: '127.0.0.1', port: redisPort },
  });
});
afterAll(async () => {
  for (const m of monitors) await m.close();
  await turn?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function monitor(cfg: ConstructorParameters<typeof TurnMonitor>[0]) {
  const m = new TurnMonitor(cfg, log);
  monitors.push(m);
  return m;
}

it('parses turn: URLs (and leaves turns: alone)', () => {
  expect(parseTurnUrl('turn:203.0.113.10:3478?transport=tcp')).toEqual({
    host: '203.0.113.10',
    port: 3478,
    transport: 'tcp',
  });
  expect(parseTurnUrl('turn:[2001:db8::1]')).toEqual({
    host: '2001:db8::1',
    port: 3478,
    transport: 'udp',
  });
  expect(parseTurnUrl('turns:relay.example:443')).toBeNull();
});

it("probes TURN with real allocations and shows coturn's own allocation reports", async () => {
  const m = monitor({
    turnUrls: [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`],
    turnSecret: secret,
    redisUrl: `redis://127.0.0.1:${redisPort}/0`,
  });
  await m.start();
  const s = await m.status();
  expect(s.probes.map((p) => [p.ok, p.error])).toEqual([
    [true, null],
    [true, null],
  ]);
  expect(s.probes[0]!.rttMs).toBeGreaterThan(0);
  // The same figures for Prometheus.
  const registry = new Registry();
  m.registerMetrics(registry);
  const text = await registry.metrics();
  expect(text).toContain(`peerway_turn_probe_ok{url="turn:127.0.0.1:${port}?transport=udp"} 1`);
  expect(text).toMatch(/^peerway_turn_allocations \d+$/m);

  // An allocation that stays open shows up in coturn's reports, and goes when released.
  const cred = turnCredentials(secret, 'live', Date.now(), 600);
  const client = await createTurnClient(
    { address: ['127.0.0.1', port], username: cred.username, password: cred.credential },
    { transport: 'udp' },
  );
  await expect
    .poll(async () => (await m.status()).coturn?.activeAllocations, { timeout: 10_000 })
    .toBeGreaterThanOrEqual(1);
  await release(client);
  await expect
    .poll(async () => (await m.status()).coturn?.activeAllocations, { timeout: 10_000 })
    .toBe(0);
  expect((await m.status()).coturn?.lastEventAt).not.toBeNull();
}, 60_000);

it('tells a wrong secret from a relay that does not answer', async () => {
  const wrong = await monitor({
    turnUrls: [`turn:127.0.0.1:${port}`],
    turnSecret: 'not-the-secret-of-this-relay',
  }).status();
  expect(wrong.probes[0]).toMatchObject({
    ok: false,
    error: expect.stringMatching(/refused our credentials/),
  });
  expect(wrong.coturn).toBeNull();
  const dead = await monitor({
    turnUrls: [`turn:127.0.0.1:${port + 99}`],
    turnSecret: secret,
  }).status();
  expect(dead.probes[0]).toMatchObject({ ok: false });
  expect(dead.probes[0]!.error).not.toMatch(/credentials/);
}, 30_000);
