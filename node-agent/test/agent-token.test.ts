/**
 * The agent checks service access tokens itself. A stand-in server (a real
 * WebSocket server speaking the agent protocol, because the real server would
 * refuse these tokens before the agent ever saw them) sends sessions with
 * missing-signature, expired, wrong-service and forged tokens: the agent
 * refuses each with a clear reason and never answers the offer.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import pino from 'pino';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import {
  encodeMessage,
  parseAgentToServer,
  type AgentToServer,
  type ServerToAgent,
} from '@peerway/protocol';
import { generateIdentity, signServiceAccessToken, verifyChallenge } from '@peerway/protocol/node';
import { Agent } from '../src/agent';

let wss: WebSocketServer;
let agent: Agent;
let sock: WebSocket;
let key: CryptoKey;
const inbox: AgentToServer[] = [];
const ISSUER = 'http://stand-in.test';

beforeAll(async () => {
  const kp = await generateKeyPair('EdDSA', { extractable: true });
  key = kp.privateKey;
  const publicJwk = await exportJWK(kp.publicKey);
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const url = `http://127.0.0.1:${(wss.address() as { port: number }).port}`;
  const welcomed = new Promise<void>((resolve) => {
    wss.on('connection', (ws) => {
      sock = ws;
      const nonce = 'n'.repeat(43);
      ws.send(encodeMessage({ type: 'challenge', nonce, serverUrl: url }));
      ws.on('message', (raw) => {
        const r = parseAgentToServer(raw as Buffer);
        if (!r.ok) return;
        inbox.push(r.value);
        if (r.value.type === 'auth') {
          verifyChallenge({ ...r.value, serverUrl: url, nonce, now: Date.now() });
          const welcome: ServerToAgent = {
            type: 'welcome',
            nodeId: r.value.nodeId,
            shortId: 'x',
            claimed: true,
            serverKey: publicJwk as Record<string, unknown>,
            tokenIssuer: ISSUER,
            heartbeatIntervalMs: 60_000,
            services: [{ name: 'box', accepted: true }],
          };
          ws.send(encodeMessage(welcome));
          resolve();
        }
      });
    });
  });
  agent = new Agent({
    serverUrl: url,
    identity: generateIdentity(),
    name: 't',
    services: [{ name: 'box', target: 'http://127.0.0.1:9', public: false }],
    log: pino({ level: 'silent' }),
  });
  agent.start();
  await welcomed;
});
afterAll(async () => {
  agent.stop();
  await new Promise((r) => wss.close(r));
});

async function session(id: string, token: string, service = 'box'): Promise<AgentToServer> {
  sock.send(
    encodeMessage({
      type: 'session',
      sessionId: id,
      service,
      token,
      iceServers: [],
      offer: 'v=0\r\n',
    }),
  );
  const deadline = Date.now() + 5000;
  for (;;) {
    const m = inbox.find((x) => 'sessionId' in x && x.sessionId === id);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no answer for ${id}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const token = (
  o: { service?: string; nowMs?: number; issuer?: string; privateKey?: CryptoKey } = {},
) =>
  signServiceAccessToken({
    privateKey: o.privateKey ?? key,
    issuer: o.issuer ?? ISSUER,
    service: o.service ?? 'box',
    subject: 'u',
    access: 'private',
    ...(o.nowMs ? { nowMs: o.nowMs } : {}),
  });

it('refuses expired, wrong-service, wrong-issuer, forged and garbage tokens with clear reasons', async () => {
  expect(await session('s1', await token({ nowMs: Date.now() - 3_600_000 }))).toMatchObject({
    type: 'session-reject',
    code: 'expired',
  });
  expect(await session('s2', await token({ service: 'other' }))).toMatchObject({
    type: 'session-reject',
    code: 'forbidden',
  });
  expect(await session('s3', await token({ issuer: 'http://evil.test' }))).toMatchObject({
    type: 'session-reject',
    code: 'unauthorized',
  });
  const stranger = await generateKeyPair('EdDSA');
  expect(await session('s4', await token({ privateKey: stranger.privateKey }))).toMatchObject({
    type: 'session-reject',
    code: 'unauthorized',
  });
  expect(await session('s5', 'not-a-token')).toMatchObject({
    type: 'session-reject',
    code: 'unauthorized',
  });
  expect(await session('s6', await token({ service: 'nope' }), 'nope')).toMatchObject({
    type: 'session-reject',
    code: 'service_unknown',
  });
  // none of these was answered with an SDP answer, and no session is open
  expect(inbox.some((m) => m.type === 'answer')).toBe(false);
  expect(agent.activeSessions).toBe(0);
});
