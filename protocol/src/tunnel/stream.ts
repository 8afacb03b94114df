/**
 * One stream's state on one end of the tunnel: its head being reassembled,
 * the body it receives, the credit it may still send, which halves have
 * ended, and who waits on it. The mux (./mux) moves a stream through these
 * states; nothing here sends a frame. Browser-safe.
 */
import type { TunnelError } from './errors';
import type { InboundBody } from './inbound';
import type { TunnelSocket } from './socket';
import { INITIAL_WINDOW_BYTES, MAX_HEAD_BYTES, WsCloseCode, type FrameTypeValue } from './wire';

export type StreamKind = 'http' | 'ws';

/** What one head fragment did: the head is complete, more fragments follow, or it grew too large. */
export type HeadFragment = { head: Uint8Array } | 'more' | 'too-large';

export class Stream {
  private headParts: Uint8Array[] = [];
  private headBytes = 0;
  /** The whole head has arrived. */
  headDone = false;
  /** The body this end receives (requests on the server role, responses on the client role). */
  inbound: InboundBody | null = null;
  /** Body bytes this end may still send. */
  sendCredit = INITIAL_WINDOW_BYTES;
  private creditWaiters: (() => void)[] = [];
  localEnded = false;
  remoteEnded = false;
  closed = false;
  readonly abort = new AbortController();
  /** Set by the side that opened the stream: takes the peer's reply head. */
  onHead: ((type: FrameTypeValue, bytes: Uint8Array) => void) | null = null;
  onResetCbs: ((e: TunnelError) => void)[] = [];
  onDone: (() => void)[] = [];
  socket: TunnelSocket | null = null;
  /** The server stopped reading the request body: drop DATA, hand credit straight back. */
  discard = false;
  /** Window granted beyond the initial one (taken from the receive budget until the stream ends). */
  extraWindow = 0;

  constructor(
    readonly id: number,
    readonly kind: StreamKind,
  ) {}

  /** Adds one fragment of a head (the last one has no MORE flag). */
  addHeadFragment(payload: Uint8Array, more: boolean): HeadFragment {
    this.headBytes += payload.byteLength;
    if (this.headBytes > MAX_HEAD_BYTES) return 'too-large';
    this.headParts.push(payload.slice());
    if (more) return 'more';
    this.headDone = true;
    const head = concat(this.headParts, this.headBytes);
    this.headParts = [];
    return { head };
  }

  /** Resolves once the stream may send again (credit arrived, or it closed). */
  waitCredit(): Promise<void> {
    if (this.sendCredit > 0 || this.closed) return Promise.resolve();
    return new Promise((r) => this.creditWaiters.push(r));
  }

  addCredit(n: number): void {
    this.sendCredit += n;
    this.wakeCredit();
  }

  wakeCredit(): void {
    const w = this.creditWaiters.splice(0);
    for (const f of w) f();
  }

  /** The stream has closed (the mux marked it): tells those waiting for its end, and wakes its sender. */
  settle(): void {
    for (const cb of this.onDone.splice(0)) cb();
    this.wakeCredit();
  }

  /**
   * The stream died: its body reader, its WebSocket and whoever waits on it
   * see `err`. `local`: this end reset it (or the tunnel went), else the peer did.
   */
  fail(err: TunnelError, local: boolean): void {
    this.inbound?.fail(err);
    this.socket?.receiveClose(
      local ? WsCloseCode.ABNORMAL : WsCloseCode.INTERNAL_ERROR,
      err.reason,
    );
    this.abort.abort(err);
    for (const cb of this.onResetCbs.splice(0)) cb(err);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
