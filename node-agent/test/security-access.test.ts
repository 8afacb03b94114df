/**
 * The agent enforces its own declared access (docs/security.md, issue 17
 * item 2): a service its owner declared private never serves a token the
 * server minted for public access, whatever the server's record says. Real
 * server, real agent process, real tunnels; the server's record is turned
 * public behind the agent's back, as a mistaken or compromised server would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signServiceAccessToken } from '@peerway/protocol/node';
import { connectTunnel, fetchAccessToken } from '@peerway/node-agent/client';
import type { PeerwayServer } from '@peerway/signaling-server';
import { Fixture, readAll, type AgentProcess } from './helpers';
import { startRecorder, type Recorder } from './fixtures/recorder';
// The server's own broker, to make it route as a mistaken server would (see the first test).
import { Broker } from '../../signaling-server/src/ws/broker';

const fx = new Fixture();
let server: PeerwayServer;
let up: Recorder;
let agent: AgentProcess;
let owner: Awaited<ReturnType<Fixture['user']>>;
const url = () => server.config.publicUrl;

beforeAll(async () => {
  up = await startRecorder();
  fx.onCleanup(() => up.close());
  server = await fx.server();
  owner = await fx.user(server);
  agent = await fx.agent({
    serverUrl: url(),
    token: owner.token,
    services: [`secret=127.0.0.1:${up.port}`, `open=127.0.0.1:${up.port},public`],
    waitFor: /✓ http:\/\/open\./,
  });
}, 60_000);
afterAll(() => fx.cleanup());

/** A token as the server mints it, for the service's owner. */
const mint = (service: string, access: 'public' | 'private') =>
  signServiceAccessToken({
    privateKey: server.keys.accessPrivateKey,
    issuer: url(),
    service,
    subject: owner.user.id,
    access,
  });

describe('the agent enforces the access its owner declared', () => {
  it('a service declared private refuses a public token although the server says public', async () => {
    const before = up.targets.length;
    // the agent announced "secret" privately; the server's record now says public
    expect((await server.store.getService('secret'))?.access).toBe('private');
    await server.store.setServiceAccess('secret', 'public');
    // A correct server never sends a public token to a node that declared the
    // service private (security-serving.test.ts checks that). Here the server
    // is made to route as a mistaken, older or compromised one would: its
    // broker forgets what the node declared. The node must still refuse.
    const proto = Broker.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
    const pick = proto.pickAgent!;
    proto.pickAgent = function (this: unknown, svc: unknown, avoid: unknown) {
      return pick.call(this, svc, avoid, false);
    };
    try {
      // the server's public path hands anyone a token
      const token = await fetchAccessToken(url(), 'secret');
      await expect(
        connectTunnel({ serverUrl: url(), service: 'secret', accessToken: token }),
      ).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringMatching(
          /this node serves "secret" privately; the server sent a public token/,
        ),
      });
      // and the node says so where its owner looks
      await expect
        .poll(() => agent.stdout + agent.stderr)
        .toMatch(/serves \\?"secret\\?" privately; the server sent a public token/);
      expect(up.targets.length).toBe(before);
    } finally {
      proto.pickAgent = pick;
      await server.store.setServiceAccess('secret', 'private');
    }
  });

  it('a service declared private serves a private token', async () => {
    const t = await connectTunnel({
      serverUrl: url(),
      service: 'secret',
      accessToken: await mint('secret', 'private'),
    });
    try {
      const r = await t.request('GET', '/mine');
      expect((await readAll(r.body)).toString()).toBe('seen /mine');
    } finally {
      t.close();
    }
  });

  it('a service declared public serves public and private tokens', async () => {
    for (const token of [await fetchAccessToken(url(), 'open'), await mint('open', 'private')]) {
      const t = await connectTunnel({ serverUrl: url(), service: 'open', accessToken: token });
      try {
        const r = await t.request('GET', '/anyone');
        expect((await readAll(r.body)).toString()).toBe('seen /anyone');
      } finally {
        t.close();
      }
    }
  });
});
