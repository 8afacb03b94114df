/**
 * Real coturn from the generated config, on loopback: REST credentials are
 * accepted, wrong or expired ones refused, and the relay refuses to open a
 * permission towards private addresses. CreatePermission is refused inside
 * coturn, so no packet is ever sent to those addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTurnClient, type TurnProtocol } from 'werift';
import { turnCredentials } from '@peerway/signaling-server';
import { startTurn, type TurnProcess } from '../../infra/turn/turn-process';
import { renderTurnConfig, DENIED_PEER_RANGES } from '../../infra/turn/config';

const secret = randomBytes(24).toString('base64url');
const port = 20000 + Math.floor(Math.random() * 20000);
let turn: TurnProcess;
const clients: TurnProtocol[] = [];

beforeAll(async () => {
  turn = await startTurn({
    secrets: [secret, randomBytes(24).toString('base64url')],
    listeningIps: ['127.0.0.1'],
    relayIps: ['127.0.0.1'],
    port,
    minPort: port + 1,
    maxPort: port + 50,
    // only the lab's documentation range is let through, for the allowed case below
    allowedPeerRanges: ['203.0.113.0-203.0.113.255'],
  });
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await turn?.stop();
});

const allocate = async (username: string, password: string) => {
  const c = await createTurnClient(
    { address: ['127.0.0.1', port], username, password },
    { transport: 'udp' },
  );
  clients.push(c);
  return c;
};

describe('coturn from the generated config', () => {
  it('renders every hardening option', () => {
    const text = renderTurnConfig({
      secrets: ['a'.repeat(20)],
      realm: 'r',
      port: 3478,
      listeningIps: ['0.0.0.0'],
      relayIps: ['0.0.0.0'],
      minPort: 49152,
      maxPort: 65535,
      userQuota: 12,
      totalQuota: 1200,
      maxBps: 0,
      pidFile: '/tmp/x.pid',
      redisStatsDb: { host: '127.0.0.1', port: 6379 },
    });
    for (const line of [
      'use-auth-secret',
      'fingerprint',
      'no-cli',
      'no-multicast-peers',
      'user-quota=12',
      'redis-statsdb="ip=127.0.0.1 port=6379',
    ])
      expect(text).toContain(line);
    for (const r of DENIED_PEER_RANGES) expect(text).toContain(`denied-peer-ip=${r}`);
    const own = renderTurnConfig({
      secrets: ['a'.repeat(20)],
      realm: 'r',
      port: 3478,
      listeningIps: ['0.0.0.0'],
      relayIps: ['198.51.100.7'],
      externalIp: '203.0.113.7/198.51.100.7',
      minPort: 1,
      maxPort: 2,
      userQuota: 1,
      totalQuota: 1,
      maxBps: 0,
      pidFile: '/tmp/p',
    });
    expect(own).toContain('denied-peer-ip=203.0.113.7');
    expect(own).toContain('denied-peer-ip=198.51.100.7');
    expect(own).not.toContain('denied-peer-ip=0.0.0.0\n');
    expect(text).not.toContain('allow-loopback-peers');
    expect(text).not.toMatch(/\{\{/);
    expect(() => renderTurnConfig({ secrets: ['short'] } as never)).toThrow(/16\+ characters/);
  });

  it('allocates with valid REST credentials (either secret, for rotation)', async () => {
    const cred = turnCredentials(secret, 'sess-ok', Date.now(), 600);
    const c = await allocate(cred.username, cred.credential);
    expect(c.relayedAddress[0]).toBe('127.0.0.1');
    expect(c.relayedAddress[1]).toBeGreaterThan(port);
  });

  it('refuses a wrong secret and an expired credential', async () => {
    const wrong = turnCredentials('not-the-secret-at-all', 'sess-bad', Date.now(), 600);
    await expect(allocate(wrong.username, wrong.credential)).rejects.toThrow();
    const expired = turnCredentials(secret, 'sess-old', Date.now() - 3_600_000, 600);
    await expect(allocate(expired.username, expired.credential)).rejects.toThrow();
  });

  it('refuses to relay towards private, loopback, link-local and CGNAT addresses', async () => {
    const cred = turnCredentials(secret, 'sess-peer', Date.now(), 600);
    const c = await allocate(cred.username, cred.credential);
    for (const ip of [
      '10.1.2.3',
      '192.168.1.1',
      '172.16.5.4',
      '127.0.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '::ffff:10.0.0.1',
    ]) {
      const err = await c.getPermission([ip, 9]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, ip).not.toBeNull();
      // 403 Forbidden IP; an IPv4-mapped v6 peer on a v4 allocation: 443 family mismatch
      expect(JSON.stringify(err), ip).toMatch(ip.includes(':') ? /\[(403|443),/ : /\[403,/);
    }
    // the allow-listed lab range is let through (a permission sends nothing to the peer)
    await expect(c.getPermission(['203.0.113.77', 9])).resolves.toBeUndefined();
  });
});
