/**
 * The server connection's timing on fake timers (no sleeping): retries with
 * the backoff policy from the very first attempt, resets it after a welcome,
 * heartbeats at the server's interval, and drops a quiet server.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { parseAgentToServer, type AgentToServer } from '@peerway/protocol';
import { generateIdentity } from '@peerway/protocol/node';
import { ServerConnection, MIN_LIVENESS_TIMEOUT_MS, type ServerSocket } from './connection';
import { nextDelay } from './policy';

class FakeSocket extends EventEmitter implements ServerSocket {
  readyState = 0;
  sent: AgentToServer[] = [];
  terminated = false;
  constructor(readonly url: string) {
    super();
  }
  send(data: string): void {
    const r = parseAgentToServer(data);
    if (!r.ok) throw r.error;
    this.sent.push(r.value);
  }
  close(): void {
    this.terminate();
  }
  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.readyState = 3;
    queueMicrotask(() => this.emit('close', 1006, Buffer.from('')));
  }
  /** The server side: open and send the challenge. */
  open(): void {
    this.readyState = 1;
    this.serverSends({ type: 'challenge', nonce: 'n'.repeat(43), serverUrl: 'http://s.test' });
  }
  serverSends(m: object): void {
    this.emit('message', Buffer.from(JSON.stringify(m)));
  }
  welcome(heartbeatIntervalMs: number): void {
    this.serverSends({
      type: 'welcome',
      nodeId: 'x',
      shortId: 'abcdef',
      claimed: true,
      serverKey: {},
      tokenIssuer: 'http://s.test',
      heartbeatIntervalMs,
      services: [],
    });
  }
  fail(): void {
    this.emit('error', new Error('ECONNREFUSED'));
    this.terminate();
  }
}

const rand = () => 0.5;
let sockets: FakeSocket[];
let conn: ServerConnection;
let received: string[];

/** A connection on fake sockets (kept in `sockets`); `extra` overrides options. */
function connection(extra: Partial<ConstructorParameters<typeof ServerConnection>[0]> = {}) {
  return new ServerConnection({
    serverUrl: 'http://s.test',
    identity: generateIdentity(),
    name: 'n',
    version: '1',
    token: 'pwt_x',
    services: () => [{ name: 'web', public: false }],
    load: () => ({ sessions: 2, cpu: 0.1, rssBytes: 1, txBytesPerSec: 0, rxBytesPerSec: 0 }),
    onMessage: (m) => received.push(m.type),
    log: pino({ level: 'silent' }),
    rand,
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    ...extra,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
  sockets = [];
  received = [];
  conn = connection();
});
afterEach(() => {
  conn.stop();
  vi.useRealTimers();
});

describe('ServerConnection', () => {
  it('connects to /ws/agent and answers the challenge with a signed auth', () => {
    conn.start();
    expect(sockets[0]!.url).toBe('ws://s.test/ws/agent');
    sockets[0]!.open();
    const auth = sockets[0]!.sent[0];
    expect(auth).toMatchObject({ type: 'auth', token: 'pwt_x', services: [{ name: 'web' }] });
    expect(JSON.stringify(auth)).not.toContain('127.0.0.1');
  });

  it('retries with backoff when the very first connection fails, forever', async () => {
    conn.start();
    for (let attempt = 0; attempt < 12; attempt++) {
      sockets.at(-1)!.fail();
      await vi.advanceTimersByTimeAsync(0); // the close event
      const before = sockets.length;
      await vi.advanceTimersByTimeAsync(nextDelay(attempt, rand) - 1);
      expect(sockets.length).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(sockets.length).toBe(before + 1);
    }
    // capped: the 12th retry waited no more than the cap
    expect(nextDelay(11, rand)).toBeLessThanOrEqual(30_000);
  });

  it('stops for good when the owner removed the node (4011), and says so', async () => {
    let removed = 0;
    conn.stop();
    conn = connection({ onRemoved: () => removed++ });
    conn.start();
    const s = sockets.at(-1)!;
    s.open();
    s.welcome(1000);
    s.emit('close', 4011, Buffer.from('the node was removed by its owner'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(removed).toBe(1);
    expect(sockets.at(-1)).toBe(s); // no reconnect: the token would claim it back
  });

  it('starts the backoff over after a welcome', async () => {
    conn.start();
    for (let i = 0; i < 5; i++) {
      sockets.at(-1)!.fail();
      await vi.advanceTimersByTimeAsync(nextDelay(i, rand));
    }
    const s = sockets.at(-1)!;
    s.open();
    s.welcome(1000);
    expect(received).toEqual(['welcome']);
    s.fail();
    await vi.advanceTimersByTimeAsync(nextDelay(0, rand));
    expect(sockets.at(-1)).not.toBe(s);
  });

  it('sends heartbeats with load at the interval the server asked for', async () => {
    conn.start();
    const s = sockets[0]!;
    s.open();
    s.welcome(5000);
    await vi.advanceTimersByTimeAsync(4999);
    expect(s.sent.filter((m) => m.type === 'heartbeat')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    s.serverSends({ type: 'heartbeat-ack', serverTime: Date.now() });
    await vi.advanceTimersByTimeAsync(5000);
    const beats = s.sent.filter((m) => m.type === 'heartbeat');
    expect(beats).toHaveLength(2);
    expect(beats[0]).toMatchObject({ load: { sessions: 2 } });
    expect(received).toEqual(['welcome']); // heartbeat-ack is handled inside
  });

  it('drops a server that goes quiet and reconnects', async () => {
    conn.start();
    const s = sockets[0]!;
    s.open();
    s.welcome(1000);
    // acks keep it alive
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(1000);
      s.serverSends({ type: 'heartbeat-ack', serverTime: Date.now() });
    }
    expect(s.terminated).toBe(false);
    await vi.advanceTimersByTimeAsync(MIN_LIVENESS_TIMEOUT_MS);
    expect(s.terminated).toBe(true);
    await vi.advanceTimersByTimeAsync(nextDelay(0, rand));
    expect(sockets).toHaveLength(2);
  });

  it('ignores unknown and malformed messages without dropping the connection', async () => {
    conn.start();
    const s = sockets[0]!;
    s.open();
    s.welcome(1000);
    s.serverSends({ type: 'from-the-future', x: 1 });
    s.emit('message', Buffer.from('not json'));
    s.serverSends({ type: 'claimed', owner: 'a@b.test' });
    expect(received).toEqual(['welcome', 'claimed']);
    expect(s.terminated).toBe(false);
  });

  it('stops retrying when stopped', async () => {
    conn.start();
    sockets[0]!.fail();
    conn.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sockets).toHaveLength(1);
  });
});
