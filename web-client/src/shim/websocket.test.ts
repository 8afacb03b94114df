import { describe, expect, it } from 'vitest';
import { TunnelMux, createMemoryChannelPair, type IncomingTunnelSocket } from '@peerway/protocol';
import {
  incomingData,
  outgoingMessage,
  protocolList,
  tunnelWebSocketClass,
  tunnelsWebSocket,
  type SocketOpener,
} from './websocket';

// Node has no CloseEvent (browsers do): the smallest stand-in with its fields.
globalThis.CloseEvent ??= class extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(type: string, init: CloseEventInit = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
} as unknown as typeof CloseEvent;

const PAGE = { href: 'http://app.localhost:8080/room/1', host: 'app.localhost:8080' };

/** A shell's tunnel to a node that accepts every WebSocket with `serve`. */
function tunnel(serve: (inc: IncomingTunnelSocket) => void): SocketOpener {
  const [a, b] = createMemoryChannelPair();
  const client = new TunnelMux(a, { role: 'client' });
  new TunnelMux(b, { role: 'server' }).onWebSocket(serve);
  return {
    openWebSocket: (path, protocols) => client.openWebSocket({ path, protocols, headers: [] }),
  };
}

const next = <T extends Event>(target: EventTarget, type: string) =>
  new Promise<T>((resolve) =>
    target.addEventListener(type, (e) => resolve(e as T), { once: true }),
  );

describe('which WebSockets go through the tunnel', () => {
  it('takes ws: and wss: to the page’s own host, and leaves the rest to the browser', () => {
    expect(tunnelsWebSocket('ws://app.localhost:8080/chat', PAGE)).toBe(true);
    expect(tunnelsWebSocket(new URL('wss://app.localhost:8080/chat'), PAGE)).toBe(true);
    expect(tunnelsWebSocket('ws://other.localhost:8080/chat', PAGE)).toBe(false);
    expect(tunnelsWebSocket('ws://app.localhost:9090/chat', PAGE)).toBe(false);
    expect(tunnelsWebSocket('http://app.localhost:8080/chat', PAGE)).toBe(false);
  });

  it('asks for the subprotocols given, as a list', () => {
    expect(protocolList()).toEqual([]);
    expect(protocolList('chat')).toEqual(['chat']);
    expect(protocolList(['a', 'b'])).toEqual(['a', 'b']);
  });
});

describe('messages between the app and the tunnel', () => {
  it('copies what the app sends, so its later writes do not leak in', () => {
    const buf = new Uint8Array([1, 2, 3, 4]);
    const view = outgoingMessage(buf.subarray(1, 3)) as Uint8Array;
    const whole = outgoingMessage(buf.buffer) as Uint8Array;
    buf.fill(9);
    expect([...view]).toEqual([2, 3]);
    expect([...whole]).toEqual([1, 2, 3, 4]);
    expect(outgoingMessage('text')).toBe('text');
  });

  it('hands binary messages over as binaryType says', async () => {
    const bytes = new Uint8Array([5, 6, 7]);
    const ab = incomingData(bytes, 'arraybuffer') as ArrayBuffer;
    expect(ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(ab)]).toEqual([5, 6, 7]);
    const blob = incomingData(bytes, 'blob') as Blob;
    expect(blob).toBeInstanceOf(Blob);
    expect([...new Uint8Array(await blob.arrayBuffer())]).toEqual([5, 6, 7]);
    expect(incomingData('hi', 'blob')).toBe('hi');
  });
});

describe('the app’s WebSocket over a real tunnel', () => {
  it('opens with the path, query and subprotocol, carries text and binary both ways, and closes cleanly', async () => {
    const heard: (string | Uint8Array)[] = [];
    const seenHeads: [string, string[]][] = [];
    let serverClosed!: (c: [number, string]) => void;
    const closedAtServer = new Promise<[number, string]>((r) => (serverClosed = r));
    const api = tunnel((inc) => {
      seenHeads.push([inc.head.path, inc.head.protocols ?? []]);
      const server = inc.accept({ protocol: 'v2' });
      server.onMessage((m) => {
        heard.push(m);
        void server.send(typeof m === 'string' ? `echo ${m}` : m);
      });
      server.onClose((code, reason) => serverClosed([code, reason]));
    });
    const Socket = tunnelWebSocketClass(api, PAGE);
    const ws = new Socket('ws://app.localhost:8080/chat?room=1', ['v2', 'v1']);
    expect(ws.readyState).toBe(ws.CONNECTING);
    expect(ws.url).toBe('ws://app.localhost:8080/chat?room=1');
    expect(() => ws.send('too early')).toThrow(/still connecting/);
    const opened: string[] = [];
    ws.onopen = () => opened.push('onopen');
    ws.addEventListener('open', () => opened.push('listener'));
    await next(ws, 'open');
    expect(seenHeads).toEqual([['/chat?room=1', ['v2', 'v1']]]);
    expect(opened).toEqual(['onopen', 'listener']);
    expect(ws.readyState).toBe(ws.OPEN);
    expect(ws.protocol).toBe('v2');
    ws.send('hello');
    expect((await next<MessageEvent>(ws, 'message')).data).toBe('echo hello');
    ws.binaryType = 'arraybuffer';
    ws.send(new Uint8Array([1, 2, 3]));
    const bin = (await next<MessageEvent>(ws, 'message')).data as ArrayBuffer;
    expect([...new Uint8Array(bin)]).toEqual([1, 2, 3]);
    const closed = next<CloseEvent>(ws, 'close');
    ws.close(4000, 'bye');
    expect(ws.readyState).toBe(ws.CLOSING);
    const ev = await closed;
    expect([ev.code, ev.wasClean, ws.readyState]).toEqual([4000, true, ws.CLOSED]);
    expect(await closedAtServer).toEqual([4000, 'bye']);
    expect(heard.map((m) => (typeof m === 'string' ? m : [...m]))).toEqual(['hello', [1, 2, 3]]);
  });

  it('fires error, then an unclean close (1006), when the node refuses the socket', async () => {
    const Socket = tunnelWebSocketClass(
      tunnel((inc) => inc.reject(403, 'Forbidden')),
      PAGE,
    );
    const ws = new Socket('ws://app.localhost:8080/private');
    const order: string[] = [];
    ws.onerror = () => order.push('error');
    const ev = await next<CloseEvent>(ws, 'close');
    expect(order).toEqual(['error']);
    expect([ev.code, ev.wasClean, ws.readyState]).toEqual([1006, false, ws.CLOSED]);
  });

  it('closed before it opened: says so at once, and closes the tunnel socket once it comes', async () => {
    const serverClosed = new Promise<number>((resolve) => {
      const Socket = tunnelWebSocketClass(
        tunnel((inc) => inc.accept().onClose((code) => resolve(code))),
        PAGE,
      );
      const ws = new Socket('ws://app.localhost:8080/chat');
      const closes: number[] = [];
      ws.onclose = (e) => closes.push(e.code);
      ws.onopen = () => closes.push(-1);
      ws.close();
      expect(closes).toEqual([1000]);
      expect(ws.readyState).toBe(ws.CLOSED);
    });
    expect(await serverClosed).toBe(1000);
  });
});
