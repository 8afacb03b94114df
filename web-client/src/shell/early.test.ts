/**
 * early.ts is an import-free classic script, so it keeps its own copies of
 * facts the protocol and the bundle own. This runs it (with fakes of the
 * browser objects it touches) and checks each copy against the original:
 * the data-channel label, the engines an answer may name, the service
 * worker's path, the engine key the bundle stores, and that every message
 * it sends is one the protocol accepts, with relay candidates left to the
 * bundle as the candidate policy has it.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ENGINE_NAMES,
  TUNNEL_LABEL,
  isRelayCandidate,
  parseClientToServer,
  type ClientToServer,
} from '@peerway/protocol';
import { SW_PATH } from '../bridge';
import type { EarlyStart } from './early';

const HOST = 'candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host';
const RELAY = 'candidate:3 1 udp 41885439 203.0.113.10 50002 typ relay raddr 0.0.0.0 rport 0';

/** ENGINE_KEY of ./main.ts (not exported: the bundle's entry cannot be imported in Node). */
const MAIN_ENGINE_KEY = /const ENGINE_KEY = '([^']+)'/.exec(
  readFileSync(new URL('./main.ts', import.meta.url), 'utf8'),
)?.[1];

class FakeWebSocket {
  static readonly OPEN = 1;
  static last: FakeWebSocket;
  readyState = 0;
  readonly sent: string[] = [];
  onmessage: ((m: { data: string }) => void) | null = null;
  private readonly listeners: (() => void)[] = [];
  constructor(readonly url: string) {
    FakeWebSocket.last = this;
  }
  addEventListener(type: string, cb: () => void): void {
    if (type === 'open') this.listeners.push(cb);
  }
  send(data: string): void {
    this.sent.push(data);
  }
  open(): void {
    this.readyState = FakeWebSocket.OPEN;
    for (const cb of this.listeners) cb();
  }
  receive(m: object): void {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}

class FakePeerConnection {
  static last: FakePeerConnection;
  static offerFails = false;
  readonly labels: string[] = [];
  readonly remote: unknown[] = [];
  onicecandidate: ((ev: unknown) => void) | null = null;
  onicecandidateerror: unknown = null;
  localDescription: { sdp: string } | null = null;
  constructor() {
    FakePeerConnection.last = this;
  }
  createDataChannel(label: string) {
    this.labels.push(label);
    return { binaryType: '', onmessage: null, onopen: null };
  }
  addEventListener(): void {}
  createOffer() {
    return FakePeerConnection.offerFails
      ? Promise.reject(new Error('no offer'))
      : Promise.resolve({ type: 'offer', sdp: 'v=0 offer' });
  }
  setConfiguration(): void {}
  setLocalDescription(d: { sdp: string } | undefined): Promise<void> {
    this.localDescription = d ?? { sdp: 'v=0 offer' };
    return Promise.resolve();
  }
  setRemoteDescription(d: unknown): Promise<void> {
    this.remote.push(d);
    return Promise.resolve();
  }
  addIceCandidate(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
  /** A local candidate, as the browser's icecandidate event carries it. */
  found(line: string): void {
    const type = / typ (\w+)/.exec(line)?.[1] ?? null;
    this.onicecandidate?.({
      candidate: { type, toJSON: () => ({ candidate: line, sdpMid: '0', sdpMLineIndex: 0 }) },
    });
  }
}

describe('early.ts, the shell page’s first script, agrees with what it copies', () => {
  let win: { __PEERWAY__?: object; __peerwayEarly?: EarlyStart };
  let storageKeys: string[];
  let registered: string[];

  /** Runs the script once, as a page load does. */
  const load = async (storedEngine: string | null = null): Promise<EarlyStart> => {
    vi.stubGlobal('sessionStorage', {
      getItem: (k: string) => (storageKeys.push(k), storedEngine),
    });
    vi.resetModules();
    await import('./early');
    return win.__peerwayEarly!;
  };
  /** The messages it sent, each parsed by the protocol (a failure names the message). */
  const sent = (): ClientToServer[] =>
    FakeWebSocket.last.sent.map((raw) => {
      const r = parseClientToServer(raw);
      if (!r.ok) throw new Error(`not a protocol message: ${raw}: ${r.error.message}`);
      return r.value;
    });
  const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

  beforeEach(() => {
    win = { __PEERWAY__: { service: 'blog', token: 'tok' } };
    storageKeys = [];
    registered = [];
    FakePeerConnection.offerFails = false;
    vi.stubGlobal('window', win);
    vi.stubGlobal('location', { protocol: 'http:', host: 'blog.localhost:8080' });
    vi.stubGlobal('WebSocket', FakeWebSocket);
    vi.stubGlobal('RTCPeerConnection', FakePeerConnection);
    vi.stubGlobal('navigator', {
      serviceWorker: {
        register: (path: string) => (registered.push(path), Promise.resolve()),
      },
    });
  });
  afterEach(() => vi.unstubAllGlobals());

  it("opens the data channel with the protocol's TUNNEL_LABEL", async () => {
    await load();
    expect(FakePeerConnection.last.labels).toEqual([TUNNEL_LABEL]);
  });

  it("registers the worker at the bundle's SW_PATH and reads the bundle's ENGINE_KEY", async () => {
    await load();
    expect(registered).toEqual([SW_PATH]);
    expect(MAIN_ENGINE_KEY).toBeTruthy();
    expect(storageKeys).toEqual([MAIN_ENGINE_KEY]);
  });

  it('asks for the session on /ws/client with the offer and the stored engine, as the protocol has `open`', async () => {
    const e = await load('werift');
    expect(new URL(FakeWebSocket.last.url).pathname).toBe('/ws/client');
    FakeWebSocket.last.open();
    await flush();
    expect(sent()).toEqual([
      {
        type: 'open',
        ref: e.ref,
        service: 'blog',
        token: 'tok',
        offer: 'v=0 offer',
        engine: 'werift',
      },
    ]);
    expect(e.offerInOpen).toBe(true);
  });

  it('sends its direct candidates once the session is granted, and leaves relay ones to the bundle', async () => {
    const e = await load();
    FakeWebSocket.last.open();
    await flush();
    const pc = FakePeerConnection.last;
    pc.found(HOST);
    pc.found(RELAY);
    FakeWebSocket.last.receive({
      type: 'session',
      ref: e.ref,
      sessionId: 's1',
      node: { shortId: 'abc123', name: 'home' },
      iceServers: [],
    });
    await flush();
    const candidates = sent().flatMap((m) => (m.type === 'candidate' ? [m] : []));
    expect(candidates).toEqual([
      {
        type: 'candidate',
        sessionId: 's1',
        candidate: { candidate: HOST, sdpMid: '0', sdpMLineIndex: 0 },
      },
    ]);
    // what it held back is what the candidate policy holds back
    const lines = [HOST, RELAY];
    expect(lines.filter((l) => !isRelayCandidate(l))).toEqual(
      candidates.map((m) => m.candidate?.candidate),
    );
    expect(e.candidates.map((c) => c.sent)).toEqual([true, false]);
  });

  it('an offer that could not be made: `open` goes without one, and the bundle takes over', async () => {
    FakePeerConnection.offerFails = true;
    const e = await load();
    FakeWebSocket.last.open();
    await flush();
    FakeWebSocket.last.receive({
      type: 'session',
      ref: e.ref,
      sessionId: 's1',
      node: { shortId: 'abc123', name: 'home' },
      iceServers: [],
    });
    await flush();
    expect(sent()).toEqual([{ type: 'open', ref: e.ref, service: 'blog', token: 'tok' }]);
    expect(e.offerInOpen).toBe(false);
    // no offer to apply: the bundle makes one and says what failed
    expect(await e.offering).toBe(false);
  });

  it.each(ENGINE_NAMES)('takes the answer of a node that answered with %s', async (engine) => {
    const e = await load();
    FakeWebSocket.last.open();
    await flush();
    FakeWebSocket.last.receive({
      type: 'session',
      ref: e.ref,
      sessionId: 's1',
      node: { shortId: 'abc123', name: 'home' },
      iceServers: [],
    });
    await flush();
    FakeWebSocket.last.receive({ type: 'answer', sessionId: 's1', sdp: 'v=0 answer', engine });
    expect(await e.answered).toBe(true);
    expect(e.answerEngine).toBe(engine);
    expect(FakePeerConnection.last.remote).toEqual([{ type: 'answer', sdp: 'v=0 answer' }]);
  });
});
