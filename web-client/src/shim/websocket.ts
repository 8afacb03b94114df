/**
 * The app's `WebSocket` to its own origin, carried by the shell's tunnel:
 * the browser's WebSocket interface (readyState, events and on* handlers,
 * binaryType, close codes) over a TunnelSocket. Sockets to other hosts
 * stay the browser's own. No globals beyond the DOM's event classes, so it
 * runs under Node too.
 */
import type { SocketMessage, TunnelSocket } from '@peerway/protocol';

/** Where the shim finds the shell's tunnel. */
export interface SocketOpener {
  openWebSocket(path: string, protocols: string[]): Promise<TunnelSocket>;
}

/** The page's address, read when a socket is made (history changes move it). */
export interface PageLocation {
  readonly href: string;
  readonly host: string;
}

/** RFC 6455 close code of a connection that ended without a close frame. */
const ABNORMAL = 1006;

/** Whether a WebSocket to `url` goes through the tunnel: ws: or wss: to the page's own host. */
export function tunnelsWebSocket(url: string | URL, page: PageLocation): boolean {
  const u = new URL(String(url), page.href);
  return u.host === page.host && (u.protocol === 'ws:' || u.protocol === 'wss:');
}

/** The subprotocols a WebSocket was asked for, as a list. */
export function protocolList(protocols?: string | string[]): string[] {
  return protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols];
}

/** What the app may send, as the tunnel carries it (a copy, so later writes to its buffer do not leak in). */
export function outgoingMessage(
  data: string | ArrayBufferLike | ArrayBufferView,
): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return new Uint8Array(data).slice();
}

/** A received message as the app expects it: text as is, binary as a Blob or an ArrayBuffer (`binaryType`), copied into this realm. */
export function incomingData(
  m: SocketMessage,
  binaryType: BinaryType,
): string | Blob | ArrayBuffer {
  if (typeof m === 'string') return m;
  // copy into this realm (the bytes come from the parent's)
  const copy = new Uint8Array(m.byteLength);
  copy.set(m);
  return binaryType === 'arraybuffer' ? copy.buffer : new Blob([copy]);
}

/** The WebSocket class the app gets for sockets to its own origin. */
export function tunnelWebSocketClass(api: SocketOpener, page: PageLocation) {
  return class PeerwayWebSocket extends EventTarget {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSING = 2;
    static readonly CLOSED = 3;
    readonly CONNECTING = 0;
    readonly OPEN = 1;
    readonly CLOSING = 2;
    readonly CLOSED = 3;
    readyState = 0;
    protocol = '';
    extensions = '';
    bufferedAmount = 0;
    binaryType: BinaryType = 'blob';
    readonly url: string;
    onopen: ((ev: Event) => unknown) | null = null;
    onmessage: ((ev: MessageEvent) => unknown) | null = null;
    onerror: ((ev: Event) => unknown) | null = null;
    onclose: ((ev: CloseEvent) => unknown) | null = null;
    private sock: TunnelSocket | null = null;
    private queue: (string | Uint8Array)[] = [];

    constructor(url: string | URL, protocols?: string | string[]) {
      super();
      const u = new URL(String(url), page.href);
      this.url = u.toString();
      api.openWebSocket(u.pathname + u.search, protocolList(protocols)).then(
        (s) => {
          this.sock = s;
          if (this.readyState === 3) return s.close(1000, '');
          this.readyState = 1;
          this.protocol = s.protocol;
          s.onMessage((m) =>
            this.fire(new MessageEvent('message', { data: incomingData(m, this.binaryType) })),
          );
          s.onClose((code, reason) => this.closed(code, reason));
          this.fire(new Event('open'));
          for (const m of this.queue.splice(0)) void s.send(m);
        },
        () => {
          this.fire(new Event('error'));
          this.closed(ABNORMAL, '');
        },
      );
    }

    private fire(ev: Event): void {
      const h = (this as unknown as Record<string, unknown>)[`on${ev.type}`];
      if (typeof h === 'function') h.call(this, ev);
      this.dispatchEvent(ev);
    }

    private closed(code: number, reason: string): void {
      if (this.readyState === 3 && code !== ABNORMAL) return;
      this.readyState = 3;
      this.fire(new CloseEvent('close', { code, reason, wasClean: code !== ABNORMAL }));
    }

    send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (this.readyState === 0)
        throw new DOMException('WebSocket is still connecting', 'InvalidStateError');
      if (this.readyState !== 1) return;
      const go = (m: string | Uint8Array) =>
        this.sock ? void this.sock.send(m) : this.queue.push(m);
      if (data instanceof Blob) void data.arrayBuffer().then((b) => go(new Uint8Array(b)));
      else go(outgoingMessage(data));
    }

    close(code = 1000, reason = ''): void {
      if (this.readyState >= 2) return;
      this.readyState = 2;
      if (this.sock) this.sock.close(code, reason);
      else this.closed(code, reason);
    }
  };
}
