/**
 * One WebSocket carried by a tunnel stream, on either end. Messages are
 * WS_MSG frames (fragmented with MORE above the frame size); the close
 * handshake is one WS_CLOSE each way.
 */
import { TunnelError } from './errors';
import { ResetCode, WsCloseCode, type HeaderPairs, type ResetCodeValue } from './wire';

export interface SocketIo {
  sendMessage(data: Uint8Array, binary: boolean): Promise<void>;
  sendClose(code: number, reason: string): void;
  finished(): void;
}

export type SocketMessage = string | Uint8Array;

/** Messages kept for a socket nobody listens to yet. */
const MAX_PENDING_MESSAGES = 1000;

export class TunnelSocket {
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  private partBinary = false;
  private sentClose = false;
  private closedState = false;
  private sendChain: Promise<void> = Promise.resolve();
  private msgCbs: ((m: SocketMessage) => void)[] = [];
  private closeCbs: ((code: number, reason: string) => void)[] = [];
  private pending: SocketMessage[] = [];

  constructor(
    private readonly io: SocketIo,
    readonly protocol: string,
    readonly headers: HeaderPairs,
  ) {}

  get isClosed(): boolean {
    return this.closedState;
  }

  /** Sends a text (string) or binary message; messages keep their order. */
  send(data: SocketMessage): Promise<void> {
    if (this.sentClose || this.closedState) {
      return Promise.reject(new TunnelError(ResetCode.STREAM_CLOSED, 'the WebSocket is closing'));
    }
    const binary = typeof data !== 'string';
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const p = this.sendChain.then(() => this.io.sendMessage(bytes, binary));
    this.sendChain = p.catch(() => {});
    return p;
  }

  /** Starts the close handshake. */
  close(code: number = WsCloseCode.NORMAL, reason = ''): void {
    if (this.sentClose || this.closedState) return;
    this.sentClose = true;
    void this.sendChain.then(() => this.io.sendClose(code, reason));
  }

  onMessage(cb: (m: SocketMessage) => void): void {
    this.msgCbs.push(cb);
    // Messages that arrived before anyone listened are not lost.
    for (const m of this.pending.splice(0)) cb(m);
  }

  onClose(cb: (code: number, reason: string) => void): void {
    this.closeCbs.push(cb);
  }

  /** @internal Adds a received fragment; returns an error reason on a violation. */
  receiveFragment(
    payload: Uint8Array,
    binary: boolean,
    more: boolean,
    maxBytes: number,
  ): string | null {
    if (this.closedState) return null;
    if (this.parts.length === 0) this.partBinary = binary;
    this.partBytes += payload.byteLength;
    if (this.partBytes > maxBytes) return `WebSocket message larger than ${maxBytes} bytes`;
    this.parts.push(payload.slice());
    if (more) return null;
    let data: Uint8Array;
    if (this.parts.length === 1) data = this.parts[0]!;
    else {
      data = new Uint8Array(this.partBytes);
      let off = 0;
      for (const p of this.parts) {
        data.set(p, off);
        off += p.byteLength;
      }
    }
    this.parts = [];
    this.partBytes = 0;
    let msg: SocketMessage;
    if (this.partBinary) msg = data;
    else {
      try {
        msg = new TextDecoder('utf-8', { fatal: true }).decode(data);
      } catch {
        return 'text WebSocket message is not valid UTF-8';
      }
    }
    if (this.msgCbs.length === 0) {
      // held for a listener that has not subscribed yet, within a bound
      if (this.pending.length >= MAX_PENDING_MESSAGES)
        return 'too many WebSocket messages before anyone listened';
      this.pending.push(msg);
    }
    for (const cb of this.msgCbs) cb(msg);
    return null;
  }

  /** @internal The peer closed (or the stream died). Answers the handshake once. */
  receiveClose(code: number, reason: string): void {
    if (this.closedState) return;
    // A dead stream (ABNORMAL, INTERNAL_ERROR) cannot carry an answer.
    if (!this.sentClose && code !== WsCloseCode.ABNORMAL && code !== WsCloseCode.INTERNAL_ERROR) {
      this.sentClose = true;
      this.io.sendClose(code === WsCloseCode.NO_STATUS ? WsCloseCode.NORMAL : code, '');
    }
    this.closedState = true;
    this.io.finished();
    for (const cb of this.closeCbs.splice(0)) cb(code, reason);
  }
}

export type { ResetCodeValue };
