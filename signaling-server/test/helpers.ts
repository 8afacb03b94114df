/** Fixtures for server tests: a real server on port 0, fake agents and clients over real WebSockets. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import WebSocket from 'ws';
import {
  encodeMessage,
  type AgentToServer,
  type ServerToAgent,
  type ServerToClient,
  type ClientToServer,
} from '@peerway/protocol';
import { generateIdentity, signChallenge, type NodeIdentity } from '@peerway/protocol/node';
import { parseConfig, type RawServerConfig } from '../src/config';
import { startPeerwayServer, type PeerwayServer, type ServerOptions } from '../src/server';
import { hashPassword } from '../src/auth/password';

export async function withServer(
  raw: RawServerConfig = {},
  opts: ServerOptions = {},
): Promise<{ server: PeerwayServer; dir: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-srv-'));
  const server = await startPeerwayServer(parseConfig({ port: 0, dataDir: dir, ...raw }), opts);
  return {
    server,
    dir,
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const randomEmail = () => `u-${randomBytes(4).toString('hex')}@test.invalid`;
export const randomPassword = () => randomBytes(12).toString('base64url');

/** A user with a personal access token, made through the store and auth directly. */
export async function makeUser(server: PeerwayServer, isAdmin = false) {
  const user = await server.store.createUser({
    email: randomEmail(),
    passwordHash: null,
    isAdmin,
    externalSubject: null,
  });
  const { token } = await server.auth.createAccessToken(user.id, 'test');
  return { user, token };
}

/** A user who signs in with an email and a password (made through the store). */
export async function makePasswordUser(server: PeerwayServer) {
  const email = randomEmail();
  const password = randomPassword();
  await server.store.createUser({
    email,
    passwordHash: await hashPassword(password),
    isAdmin: false,
    externalSubject: null,
  });
  return { email, password };
}

/** JSON over HTTP against the server. */
export async function api(
  server: PeerwayServer,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; cookie?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(server.url + path, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** A socket that queues parsed JSON messages for `next()`. */
export class TestSocket<In extends { type: string }> {
  readonly ws: WebSocket;
  private queue: In[] = [];
  private waiters: ((m: In) => void)[] = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as In;
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.closed = new Promise((r) =>
      this.ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
    );
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  next(timeoutMs = 5000): Promise<In> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message within timeout')), timeoutMs);
      this.waiters.push((m) => (clearTimeout(t), resolve(m)));
    });
  }

  /** Next message of `type`, skipping others. */
  async nextOf<T extends In['type']>(type: T, timeoutMs = 5000): Promise<Extract<In, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (m.type === type) return m as Extract<In, { type: T }>;
    }
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): void {
    this.ws.terminate();
  }
}

export class FakeAgent extends TestSocket<ServerToAgent> {
  constructor(
    server: PeerwayServer,
    readonly identity: NodeIdentity = generateIdentity(),
  ) {
    super(server.url.replace('http', 'ws') + '/ws/agent');
  }

  send(m: AgentToServer): void {
    this.ws.send(encodeMessage(m));
  }

  /** Answers the challenge; returns the challenge and the server's reply. */
  async handshake(
    extra: Partial<Extract<AgentToServer, { type: 'auth' }>> = {},
    serverUrl?: string,
  ) {
    await this.open();
    const ch = (await this.next()) as Extract<ServerToAgent, { type: 'challenge' }>;
    const timestamp = extra.timestamp ?? Date.now();
    this.send({
      type: 'auth',
      nodeId: this.identity.nodeId,
      timestamp,
      signature: signChallenge(this.identity, serverUrl ?? ch.serverUrl, ch.nonce, timestamp),
      name: 'test-node',
      version: '1',
      services: [],
      ...extra,
    });
    return { challenge: ch, reply: await this.next() };
  }
}

export class FakeClient extends TestSocket<ServerToClient> {
  constructor(server: PeerwayServer) {
    super(server.url.replace('http', 'ws') + '/ws/client');
  }
  send(m: ClientToServer): void {
    this.ws.send(encodeMessage(m));
  }
}

/**
 * Offer (client → agent, with the service and token the agent must see), a
 * client candidate, and the answer back: the signaling of one session,
 * asserted at each step.
 */
export async function signalSession(
  client: FakeClient,
  agent: FakeAgent,
  sessionId: string,
  expected: { service: string; token: string },
): Promise<void> {
  client.send({ type: 'offer', sessionId, sdp: 'v=0 offer' });
  expect(await agent.nextOf('session')).toMatchObject({
    sessionId,
    ...expected,
    offer: 'v=0 offer',
  });
  client.send({
    type: 'candidate',
    sessionId,
    candidate: { candidate: 'candidate:1 1 udp 1 192.0.2.9 5000 typ host', sdpMid: '0' },
  });
  expect(await agent.nextOf('candidate')).toMatchObject({ sessionId });
  agent.send({ type: 'answer', sessionId, sdp: 'v=0 answer' });
  expect(await client.nextOf('answer')).toEqual({ type: 'answer', sessionId, sdp: 'v=0 answer' });
}

/** A hand-driven clock for the server (fake time across real sockets). */
export class ManualClock {
  t = Date.now();
  private seq = 0;
  private timers = new Map<number, { at: number; every: number | null; fn: () => void }>();
  now = () => this.t;
  setInterval = (fn: () => void, ms: number) => this.add(fn, ms, ms);
  setTimeout = (fn: () => void, ms: number) => this.add(fn, ms, null);
  clearInterval = (h: unknown) => void this.timers.delete(h as number);
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  private add(fn: () => void, ms: number, every: number | null): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, every, fn });
    return id;
  }
  /** Moves time forward, firing what falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, x] = due;
      this.t = x.at;
      if (x.every) x.at += x.every;
      else this.timers.delete(id);
      x.fn();
    }
    this.t = end;
  }
}

/** A real redis-server (Debian) on a random loopback port, AOF on, in a temp dir. */
export async function startRedis(): Promise<{
  port: number;
  url(db?: number): string;
  stop(): Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-redis-'));
  const port = 21000 + Math.floor(Math.random() * 20000);
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--databases',
      '64',
    ],
    { stdio: 'pipe' },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) resolve();
    });
    redis.once('exit', (c) => reject(new Error(`redis-server exited ${c}: ${out}`)));
  });
  return {
    port,
    url: (db = 0) => `redis://127.0.0.1:${port}/${db}`,
    async stop() {
      if (redis.exitCode === null) {
        const gone = new Promise((r) => redis.once('exit', r));
        redis.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
