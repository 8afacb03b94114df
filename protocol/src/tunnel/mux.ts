/**
 * TunnelMux: many concurrent HTTP and WebSocket streams over one ordered,
 * reliable FrameChannel. The same class runs on both ends: the client role
 * (browser shell, Node tunnel client) opens streams, the server role (node
 * agent) answers them. Browser-safe.
 *
 * Memory is bounded on both ends: a receiver holds at most the per-stream
 * window (credit) per stream, within a per-tunnel budget for what it grants
 * beyond the initial window, and a sender never lets the channel's
 * bufferedAmount exceed the high-water mark (werift stalls for good around
 * 8 MiB, so the default is 1 MiB).
 */
import {
  FrameFlag,
  FrameType,
  ResetCode,
  decodeCodeReason,
  decodeFrame,
  decodeU32,
  encodeCodeReason,
  encodeFrame,
  encodeU32,
  FRAME_HEADER_BYTES,
  type Frame,
  type FrameTypeValue,
} from './frame';
import type { FrameChannel } from './channel';
import { TunnelError } from './errors';
import {
  MAX_HEAD_BYTES,
  RequestHeadSchema,
  ResponseHeadSchema,
  WsAcceptHeadSchema,
  WsOpenHeadSchema,
  parseHead,
  type RequestHead,
  type ResponseHead,
  type WsAcceptHead,
  type WsOpenHead,
  type HeaderPairs,
} from './head';
import { TunnelSocket } from './socket';
import { InboundBody } from './inbound';

/** Per-stream flow-control window every stream starts with, in bytes; the same on both ends (part of the protocol). */
export const INITIAL_WINDOW_BYTES = 256 * 1024;
/**
 * Window a receiver grants each stream by default, in bytes: the initial
 * window plus one CREDIT sent when the stream starts. A window caps one
 * stream at window ÷ round-trip time; 256 KiB over a 50 ms path is 5 MB/s,
 * 2 MiB is 42 MB/s (bench/README.md, "a window for real round trips").
 */
export const DEFAULT_RECEIVE_WINDOW_BYTES = 2 * 1024 * 1024;
/**
 * Most window beyond the initial one that a receiver grants all its streams
 * together, in bytes (a connection window in effect, with no extra frame):
 * streams beyond it keep the initial window, so a receiver holds at most
 * this plus the initial window per stream.
 */
export const DEFAULT_RECEIVE_BUDGET_BYTES = 16 * 1024 * 1024;
/** Default largest DATA payload: 64 KiB (bounded by the channel's max-message-size); fewer, larger messages moved ~1.4x the bytes of 16 KiB ones into Chromium (bench/README.md). */
export const DEFAULT_MAX_FRAME_PAYLOAD_BYTES = 64 * 1024;
/** Default send high-water mark on the channel (keep ≤ 4 MiB for werift). */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/** Most outstanding credit a peer may grant one stream (sanity bound). */
const MAX_CREDIT_BYTES = 1024 * 1024 * 1024;
/** Largest WebSocket message after reassembly. */
export const DEFAULT_MAX_WS_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface MuxOptions {
  role: 'client' | 'server';
  maxFramePayloadBytes?: number;
  highWaterMarkBytes?: number;
  maxConcurrentStreams?: number;
  maxWsMessageBytes?: number;
  /** Window granted to each stream whose body this end receives (default DEFAULT_RECEIVE_WINDOW_BYTES; at least the initial window). */
  receiveWindowBytes?: number;
  /** Window beyond the initial one granted to all streams together (default DEFAULT_RECEIVE_BUDGET_BYTES). */
  receiveBudgetBytes?: number;
  /** Told about protocol violations (which never throw). */
  onProtocolError?: (streamId: number | null, reason: string) => void;
}

export interface TunnelResponse {
  status: number;
  statusText: string;
  headers: HeaderPairs;
  body: ReadableStream<Uint8Array>;
}

export type BodySource = ReadableStream<Uint8Array> | Uint8Array | null | undefined;

/** A request arriving at the server role. */
export interface IncomingTunnelRequest {
  readonly streamId: number;
  readonly head: RequestHead;
  readonly body: ReadableStream<Uint8Array>;
  /** Aborted when the client cancels or the tunnel closes. */
  readonly signal: AbortSignal;
  /** Sends the response head, then streams `body` (null: no body). */
  respond(head: ResponseHead, body?: BodySource): Promise<void>;
  /** Ends the stream abnormally (the client sees a TunnelError). */
  reset(code: number, reason: string): void;
}

/** A WebSocket open request arriving at the server role. */
export interface IncomingTunnelSocket {
  readonly streamId: number;
  readonly head: WsOpenHead;
  readonly signal: AbortSignal;
  accept(head?: Partial<WsAcceptHead>): TunnelSocket;
  /** Refuses the upgrade with an HTTP answer. */
  reject(status: number, statusText: string): void;
}

type StreamKind = 'http' | 'ws';

class Stream {
  headParts: Uint8Array[] = [];
  headBytes = 0;
  headDone = false;
  inbound: InboundBodyLike | null = null;
  sendCredit = INITIAL_WINDOW_BYTES;
  private creditWaiters: (() => void)[] = [];
  localEnded = false;
  remoteEnded = false;
  closed = false;
  readonly abort = new AbortController();
  onHead: ((type: FrameTypeValue, bytes: Uint8Array) => void) | null = null;
  onResetCbs: ((e: TunnelError) => void)[] = [];
  onDone: (() => void)[] = [];
  socket: TunnelSocket | null = null;
  /** The server stopped reading the request body: drop DATA, hand credit straight back. */
  discard = false;
  /** Window granted beyond the initial one (taken from the mux's budget until the stream ends). */
  extraWindow = 0;

  constructor(
    readonly id: number,
    readonly kind: StreamKind,
  ) {}

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
}

type InboundBodyLike = InboundBody;

export class TunnelMux {
  readonly role: 'client' | 'server';
  private readonly maxPayload: number;
  private readonly hwm: number;
  private readonly maxStreams: number;
  private readonly maxWsMessage: number;
  private readonly receiveWindow: number;
  /** The channel hands over each message as ours to keep (no copy of body bytes). */
  private readonly ownsMessages: boolean;
  /** Window beyond the initial one still free to grant. */
  private receiveBudget: number;
  private readonly streams = new Map<number, Stream>();
  /** Highest stream id the peer opened (server role) or we opened (client role). */
  private lastId = 0;
  private writeWaiters: (() => void)[] = [];
  private pings = new Map<number, { start: number; resolve: (ms: number) => void }>();
  private pingSeq = 0;
  private closed = false;
  private closeCbs: ((reason: string) => void)[] = [];
  private requestHandler: ((req: IncomingTunnelRequest) => void) | null = null;
  private socketHandler: ((s: IncomingTunnelSocket) => void) | null = null;
  private readonly onProtocolError: (id: number | null, reason: string) => void;
  /** Bytes of DATA sent and received, for load reports. */
  bytesSent = 0;
  bytesReceived = 0;
  /**
   * Messages received from the peer, any kind. A pong can wait behind
   * megabytes of DATA on a busy channel; this tells "late" from "gone".
   */
  messagesReceived = 0;

  constructor(
    private readonly channel: FrameChannel,
    opts: MuxOptions,
  ) {
    this.role = opts.role;
    const channelLimit =
      channel.maxMessageSize > 0 ? channel.maxMessageSize - FRAME_HEADER_BYTES : Infinity;
    this.maxPayload = Math.max(
      1024,
      Math.min(opts.maxFramePayloadBytes ?? DEFAULT_MAX_FRAME_PAYLOAD_BYTES, channelLimit),
    );
    this.hwm = Math.min(opts.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES, 4 * 1024 * 1024);
    this.maxStreams = opts.maxConcurrentStreams ?? 512;
    this.maxWsMessage = opts.maxWsMessageBytes ?? DEFAULT_MAX_WS_MESSAGE_BYTES;
    this.receiveWindow = Math.max(
      INITIAL_WINDOW_BYTES,
      opts.receiveWindowBytes ?? DEFAULT_RECEIVE_WINDOW_BYTES,
    );
    this.receiveBudget = Math.max(0, opts.receiveBudgetBytes ?? DEFAULT_RECEIVE_BUDGET_BYTES);
    this.ownsMessages = channel.ownsMessages === true;
    this.onProtocolError = opts.onProtocolError ?? (() => {});
    channel.setBufferedAmountLowThreshold(Math.floor(this.hwm / 4));
    channel.onBufferedAmountLow(() => this.wakeWriters());
    channel.onMessage((m) => this.onMessage(m));
    channel.onClose(() => this.shutdown('the data channel closed'));
  }

  /** Number of open streams. */
  get activeStreams(): number {
    return this.streams.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // -------------------------------------------------------------------------
  // client role

  /** Sends an HTTP request; resolves with the response head and a streaming body. */
  async request(
    head: RequestHead,
    body?: BodySource,
    opts: { signal?: AbortSignal } = {},
  ): Promise<TunnelResponse> {
    const stream = this.openStream('http');
    return new Promise<TunnelResponse>((resolve, reject) => {
      const onAbort = () => {
        const e = new TunnelError(ResetCode.CANCEL, 'request aborted');
        this.resetStream(stream, ResetCode.CANCEL, 'request aborted');
        reject(e);
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      // the caller's signal may outlive the stream: do not keep it referenced
      stream.onDone.push(() => opts.signal?.removeEventListener('abort', onAbort));
      stream.onResetCbs.push((e) => reject(e));
      stream.inbound = this.makeInbound(stream);
      stream.onHead = (type, bytes) => {
        const h = type === FrameType.RES_HEAD ? parseHead(ResponseHeadSchema, bytes) : null;
        if (!h) return this.protocolReset(stream, 'expected a valid response head');
        resolve({
          status: h.status,
          statusText: h.statusText,
          headers: h.headers,
          body: stream.inbound!.readable,
        });
      };
      this.sendHead(FrameType.REQ_HEAD, stream.id, head);
      this.growWindow(stream);
      void this.pump(stream, body ?? null);
    });
  }

  /** Opens a WebSocket to the service through the tunnel. */
  openWebSocket(head: WsOpenHead): Promise<TunnelSocket> {
    const stream = this.openStream('ws');
    return new Promise<TunnelSocket>((resolve, reject) => {
      stream.onResetCbs.push((e) => reject(e));
      stream.onHead = (type, bytes) => {
        if (type === FrameType.WS_ACCEPT) {
          const h = parseHead(WsAcceptHeadSchema, bytes);
          if (!h) return this.protocolReset(stream, 'malformed WebSocket accept head');
          stream.socket = new TunnelSocket(this.socketIo(stream), h.protocol, h.headers);
          resolve(stream.socket);
        } else {
          const h = parseHead(ResponseHeadSchema, bytes);
          this.finish(stream);
          reject(
            new TunnelError(
              ResetCode.REFUSED,
              `WebSocket refused: ${h?.status ?? '?'} ${h?.statusText ?? ''}`.trim(),
            ),
          );
        }
      };
      this.sendHead(FrameType.WS_OPEN, stream.id, head);
    });
  }

  /** Round-trip time of one PING, in ms. */
  ping(timeoutMs = 10_000): Promise<number> {
    const nonce = (this.pingSeq = (this.pingSeq + 1) >>> 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(nonce);
        reject(new TunnelError(ResetCode.GOING_AWAY, 'ping timed out'));
      }, timeoutMs);
      this.pings.set(nonce, {
        start: now(),
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
      });
      this.sendControl(FrameType.PING, 0, encodeU32(nonce));
    });
  }

  // -------------------------------------------------------------------------
  // server role

  onRequest(handler: (req: IncomingTunnelRequest) => void): void {
    this.requestHandler = handler;
  }

  onWebSocket(handler: (s: IncomingTunnelSocket) => void): void {
    this.socketHandler = handler;
  }

  onClose(cb: (reason: string) => void): void {
    if (this.closed) cb('closed');
    else this.closeCbs.push(cb);
  }

  /** Ends every stream and closes the channel. */
  close(reason = 'closed'): void {
    if (this.closed) return;
    try {
      if (this.channel.isOpen)
        this.channel.send(
          encodeFrame(FrameType.GOAWAY, 0, encodeCodeReason(ResetCode.GOING_AWAY, reason)),
        );
    } catch {
      // the channel is going away anyway
    }
    this.shutdown(reason);
    this.channel.close();
  }

  // -------------------------------------------------------------------------
  // receiving

  private onMessage(msg: Uint8Array): void {
    if (this.closed) return;
    this.messagesReceived++;
    const r = decodeFrame(msg);
    if (!r.ok) {
      this.onProtocolError(r.streamId, r.reason);
      if (r.streamId) this.resetById(r.streamId, ResetCode.PROTOCOL_ERROR, r.reason);
      return;
    }
    try {
      this.dispatch(r.frame);
    } catch (err) {
      // A bug or a hostile frame must only cost its own stream.
      const reason = err instanceof Error ? err.message : String(err);
      this.onProtocolError(r.frame.streamId, reason);
      if (r.frame.streamId) this.resetById(r.frame.streamId, ResetCode.INTERNAL, 'internal error');
    }
  }

  private dispatch(f: Frame): void {
    switch (f.type) {
      case FrameType.PING:
        if (f.payload.byteLength === 4) this.sendControl(FrameType.PONG, 0, f.payload);
        return;
      case FrameType.PONG: {
        const n = decodeU32(f.payload);
        const p = n === null ? undefined : this.pings.get(n);
        if (p && n !== null) {
          this.pings.delete(n);
          p.resolve(now() - p.start);
        }
        return;
      }
      case FrameType.GOAWAY:
        this.shutdown(decodeCodeReason(f.payload)?.reason || 'the peer went away');
        this.channel.close();
        return;
      case FrameType.REQ_HEAD:
      case FrameType.WS_OPEN:
        return this.onOpeningHead(f);
      case FrameType.RES_HEAD:
      case FrameType.WS_ACCEPT:
        return this.onReplyHead(f);
      case FrameType.DATA:
        return this.onData(f);
      case FrameType.END:
        return this.onEnd(f);
      case FrameType.RESET: {
        const s = this.streamFor(f, false);
        const cr = decodeCodeReason(f.payload);
        if (s)
          this.failStream(
            s,
            new TunnelError(cr?.code ?? ResetCode.PROTOCOL_ERROR, cr?.reason || 'reset by peer'),
            false,
          );
        return;
      }
      case FrameType.CREDIT: {
        const s = this.streamFor(f, false);
        const n = decodeU32(f.payload);
        if (!s) return;
        if (n === null || n === 0) return this.protocolReset(s, 'malformed CREDIT');
        if (s.sendCredit + n > MAX_CREDIT_BYTES)
          return this.protocolReset(s, 'CREDIT beyond 1 GiB', ResetCode.FLOW_CONTROL);
        s.addCredit(n);
        return;
      }
      case FrameType.WS_MSG:
      case FrameType.WS_CLOSE: {
        const s = this.streamFor(f, true);
        if (!s) return;
        if (s.kind !== 'ws' || !s.socket)
          return this.protocolReset(s, 'WebSocket frame on a stream that is not an open WebSocket');
        if (f.type === FrameType.WS_MSG) {
          const err = s.socket.receiveFragment(
            f.payload,
            (f.flags & FrameFlag.BINARY) !== 0,
            (f.flags & FrameFlag.MORE) !== 0,
            this.maxWsMessage,
          );
          if (err) this.protocolReset(s, err);
        } else {
          const cr = decodeCodeReason(f.payload) ?? { code: 1005, reason: '' };
          s.socket.receiveClose(cr.code, cr.reason);
          this.finish(s);
        }
        return;
      }
      default: {
        const never: never = f.type;
        this.onProtocolError(f.streamId, `unhandled frame type ${String(never)}`);
      }
    }
  }

  /**
   * Finds the stream a frame belongs to. Frames for streams that were open
   * once and have ended are ignored (they may have been in flight when the
   * stream was reset); frames for ids never opened reset that id.
   */
  private streamFor(f: Frame, resetUnknown: boolean): Stream | null {
    const s = this.streams.get(f.streamId);
    if (s) return s;
    if (f.streamId === 0 || f.streamId > this.lastId) {
      this.onProtocolError(f.streamId, `frame type ${f.type} for a stream that was never opened`);
      if (resetUnknown && f.streamId !== 0)
        this.sendReset(f.streamId, ResetCode.PROTOCOL_ERROR, 'unknown stream');
    }
    return null;
  }

  private onOpeningHead(f: Frame): void {
    const existing = this.streams.get(f.streamId);
    if (existing && !existing.headDone && existing.onHead === null) {
      return this.appendHead(existing, f); // a continuation fragment
    }
    if (this.role !== 'server')
      return this.resetById(
        f.streamId,
        ResetCode.PROTOCOL_ERROR,
        'only the client role opens streams',
      );
    if (existing) return this.protocolReset(existing, `stream id ${f.streamId} reused while open`);
    // Clients open odd ids in increasing order. An opening head on an id that
    // ended before is taken as a new stream (the only harm is to the client's
    // own session); one on an id that is open resets that stream (above).
    if (f.streamId % 2 === 0) {
      return this.resetById(
        f.streamId,
        ResetCode.PROTOCOL_ERROR,
        `stream id ${f.streamId} is not odd`,
      );
    }
    this.lastId = Math.max(this.lastId, f.streamId);
    if (this.streams.size >= this.maxStreams) {
      return this.sendReset(f.streamId, ResetCode.REFUSED, 'too many concurrent streams');
    }
    const s = new Stream(f.streamId, f.type === FrameType.WS_OPEN ? 'ws' : 'http');
    this.streams.set(s.id, s);
    this.appendHead(s, f);
  }

  private onReplyHead(f: Frame): void {
    const s = this.streamFor(f, true);
    if (!s) return;
    if (s.headDone || !s.onHead) return this.protocolReset(s, 'unexpected reply head');
    this.appendHead(s, f);
  }

  private appendHead(s: Stream, f: Frame): void {
    s.headBytes += f.payload.byteLength;
    if (s.headBytes > MAX_HEAD_BYTES)
      return this.protocolReset(
        s,
        `head larger than ${MAX_HEAD_BYTES} bytes`,
        ResetCode.FRAME_TOO_LARGE,
      );
    s.headParts.push(f.payload.slice());
    if (f.flags & FrameFlag.MORE) return;
    s.headDone = true;
    const bytes = concat(s.headParts, s.headBytes);
    s.headParts = [];
    if (s.onHead) s.onHead(f.type, bytes);
    else this.onIncoming(s, f.type, bytes);
  }

  private onIncoming(s: Stream, type: FrameTypeValue, bytes: Uint8Array): void {
    if (type === FrameType.REQ_HEAD) {
      const head = parseHead(RequestHeadSchema, bytes);
      if (!head) return this.protocolReset(s, 'malformed request head');
      if (!this.requestHandler)
        return this.resetStream(s, ResetCode.REFUSED, 'this end serves no requests');
      s.inbound = this.makeInbound(s);
      this.growWindow(s);
      let responded = false;
      const req: IncomingTunnelRequest = {
        streamId: s.id,
        head,
        body: s.inbound.readable,
        signal: s.abort.signal,
        respond: async (rh, body) => {
          if (responded) throw new Error('respond() called twice');
          responded = true;
          if (s.closed) return;
          this.sendHead(FrameType.RES_HEAD, s.id, rh);
          await this.pump(s, body ?? null);
        },
        reset: (code, reason) => this.resetStream(s, code, reason),
      };
      this.requestHandler(req);
    } else {
      const head = parseHead(WsOpenHeadSchema, bytes);
      if (!head) return this.protocolReset(s, 'malformed WebSocket open head');
      if (!this.socketHandler)
        return this.resetStream(s, ResetCode.REFUSED, 'this end serves no WebSockets');
      let answered = false;
      this.socketHandler({
        streamId: s.id,
        head,
        signal: s.abort.signal,
        accept: (h = {}) => {
          if (answered) throw new Error('already answered');
          answered = true;
          const full = { protocol: h.protocol ?? '', headers: h.headers ?? [] };
          s.socket = new TunnelSocket(this.socketIo(s), full.protocol, full.headers);
          this.sendHead(FrameType.WS_ACCEPT, s.id, full);
          return s.socket;
        },
        reject: (status, statusText) => {
          if (answered) throw new Error('already answered');
          answered = true;
          this.sendHead(FrameType.RES_HEAD, s.id, { status, statusText, headers: [] });
          this.finish(s);
        },
      });
    }
  }

  private onData(f: Frame): void {
    const s = this.streamFor(f, true);
    if (!s) return;
    this.bytesReceived += f.payload.byteLength;
    if (s.discard && !s.remoteEnded) {
      if (f.payload.byteLength > 0)
        this.sendControl(FrameType.CREDIT, s.id, encodeU32(f.payload.byteLength));
      return;
    }
    if (!s.inbound || s.inbound.isEnded || !s.headDone)
      return this.protocolReset(s, 'DATA on a stream that is not receiving a body');
    if (!s.inbound.push(f.payload, this.ownsMessages)) {
      this.protocolReset(
        s,
        'the peer sent more than its flow-control window',
        ResetCode.FLOW_CONTROL,
      );
    }
  }

  private onEnd(f: Frame): void {
    const s = this.streamFor(f, true);
    if (!s) return;
    if (!s.inbound || (s.inbound.isEnded && !s.discard) || s.remoteEnded)
      return this.protocolReset(s, 'END on a stream that is not receiving a body');
    s.inbound.end();
    s.remoteEnded = true;
    this.maybeFinish(s);
  }

  // -------------------------------------------------------------------------
  // sending

  private openStream(kind: StreamKind): Stream {
    if (this.role !== 'client') throw new Error('only the client role opens streams');
    if (this.closed) throw new TunnelError(ResetCode.GOING_AWAY, 'the tunnel is closed');
    this.lastId = this.lastId === 0 ? 1 : this.lastId + 2;
    const s = new Stream(this.lastId, kind);
    this.streams.set(s.id, s);
    return s;
  }

  private makeInbound(s: Stream): InboundBodyLike {
    return new InboundBody(
      INITIAL_WINDOW_BYTES,
      (n) => this.sendControl(FrameType.CREDIT, s.id, encodeU32(n)),
      () => {
        if (s.closed || s.remoteEnded) return;
        // The client cancelling a response aborts the request. The server
        // not wanting a request body (a GET, or an early answer) only stops
        // reading it: the stream lives on for the response.
        if (this.role === 'server') s.discard = true;
        else this.resetStream(s, ResetCode.CANCEL, 'body cancelled by the reader');
      },
    );
  }

  /**
   * Raises a receiving stream's window from the initial one to the receive
   * window, as far as the budget allows, with one CREDIT. Sent after the
   * stream's head, so the peer knows the stream.
   */
  private growWindow(s: Stream): void {
    const extra = Math.min(this.receiveWindow - INITIAL_WINDOW_BYTES, this.receiveBudget);
    if (extra <= 0 || !s.inbound || s.closed) return;
    this.receiveBudget -= extra;
    s.extraWindow = extra;
    s.inbound.grow(extra);
    this.sendControl(FrameType.CREDIT, s.id, encodeU32(extra));
  }

  private sendHead(type: FrameTypeValue, id: number, head: unknown): void {
    const bytes = new TextEncoder().encode(JSON.stringify(head));
    if (bytes.byteLength > MAX_HEAD_BYTES)
      throw new TunnelError(ResetCode.FRAME_TOO_LARGE, 'head too large');
    for (let off = 0; off < bytes.byteLength || off === 0; off += this.maxPayload) {
      const end = Math.min(off + this.maxPayload, bytes.byteLength);
      this.sendControl(
        type,
        id,
        bytes.subarray(off, end),
        end < bytes.byteLength ? FrameFlag.MORE : 0,
      );
      if (end >= bytes.byteLength) break;
    }
  }

  /** Small frames go out at once, whatever the buffer holds. */
  private sendControl(type: FrameTypeValue, id: number, payload?: Uint8Array, flags = 0): void {
    if (this.closed || !this.channel.isOpen) return;
    try {
      this.channel.send(encodeFrame(type, id, payload, flags));
    } catch (err) {
      this.onProtocolError(id, `send failed: ${err instanceof Error ? err.message : String(err)}`);
      this.close('send failed');
    }
  }

  /** Resolves when the channel's buffer is below the high-water mark. */
  private async writable(): Promise<void> {
    while (!this.closed && this.channel.bufferedAmount > this.hwm) {
      await new Promise<void>((r) => this.writeWaiters.push(r));
    }
    if (this.closed) throw new TunnelError(ResetCode.GOING_AWAY, 'the tunnel is closed');
  }

  private wakeWriters(): void {
    const w = this.writeWaiters.splice(0);
    for (const f of w) f();
  }

  /** Streams a body as DATA frames within credit and the high-water mark, then END. */
  private async pump(s: Stream, source: BodySource): Promise<void> {
    if (source === null || source === undefined) {
      this.sendEnd(s);
      return;
    }
    const stream =
      source instanceof Uint8Array
        ? new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(source), c.close()) })
        : source;
    const reader = stream.getReader();
    const cancel = () => reader.cancel().catch(() => {});
    s.onResetCbs.push(cancel);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (s.closed) return;
        let off = 0;
        while (off < value.byteLength) {
          // The mark and the credit are checked with no await between the
          // check and the send, so streams woken together by
          // bufferedamountlow cannot all overshoot the mark.
          await s.waitCredit();
          if (s.closed) return;
          if (this.channel.bufferedAmount > this.hwm) {
            await this.writable();
            continue;
          }
          if (s.sendCredit <= 0) continue;
          const n = Math.min(value.byteLength - off, this.maxPayload, s.sendCredit);
          this.channel.send(encodeFrame(FrameType.DATA, s.id, value.subarray(off, off + n)));
          this.bytesSent += n;
          s.sendCredit -= n;
          off += n;
        }
      }
      this.sendEnd(s);
    } catch (err) {
      if (!s.closed)
        this.resetStream(
          s,
          ResetCode.INTERNAL,
          `body failed: ${err instanceof Error ? err.message : String(err)}`,
        );
    }
  }

  private sendEnd(s: Stream): void {
    if (s.closed) return;
    this.sendControl(FrameType.END, s.id);
    s.localEnded = true;
    this.maybeFinish(s);
  }

  private socketIo(s: Stream) {
    return {
      sendMessage: async (data: Uint8Array, binary: boolean) => {
        let off = 0;
        do {
          while (this.channel.bufferedAmount > this.hwm) await this.writable();
          if (s.closed) throw new TunnelError(ResetCode.STREAM_CLOSED, 'the WebSocket is closed');
          const end = Math.min(off + this.maxPayload, data.byteLength);
          const flags =
            (binary ? FrameFlag.BINARY : 0) | (end < data.byteLength ? FrameFlag.MORE : 0);
          this.channel.send(encodeFrame(FrameType.WS_MSG, s.id, data.subarray(off, end), flags));
          this.bytesSent += end - off;
          off = end;
        } while (off < data.byteLength);
      },
      sendClose: (code: number, reason: string) =>
        this.sendControl(FrameType.WS_CLOSE, s.id, encodeCodeReason(code, reason)),
      finished: () => this.finish(s),
    };
  }

  // -------------------------------------------------------------------------
  // ending streams

  private maybeFinish(s: Stream): void {
    if (s.localEnded && s.remoteEnded) this.finish(s);
  }

  private finish(s: Stream): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.receiveBudget += s.extraWindow;
    s.extraWindow = 0;
    for (const cb of s.onDone.splice(0)) cb();
    s.wakeCredit();
  }

  private protocolReset(s: Stream, reason: string, code: number = ResetCode.PROTOCOL_ERROR): void {
    this.onProtocolError(s.id, reason);
    this.resetStream(s, code, reason);
  }

  private resetById(id: number, code: number, reason: string): void {
    const s = this.streams.get(id);
    if (s) this.resetStream(s, code, reason);
    else this.sendReset(id, code, reason);
  }

  private sendReset(id: number, code: number, reason: string): void {
    this.sendControl(FrameType.RESET, id, encodeCodeReason(code, reason));
  }

  /** Resets a stream: tells the peer, and fails everything waiting on it here. */
  private resetStream(s: Stream, code: number, reason: string): void {
    if (s.closed) return;
    this.sendReset(s.id, code, reason);
    this.failStream(s, new TunnelError(code, reason), true);
  }

  private failStream(s: Stream, err: TunnelError, local: boolean): void {
    if (s.closed) return;
    this.finish(s);
    s.inbound?.fail(err);
    s.socket?.receiveClose(local ? 1006 : 1011, err.reason);
    s.abort.abort(err);
    for (const cb of s.onResetCbs.splice(0)) cb(err);
  }

  private shutdown(reason: string): void {
    if (this.closed) return;
    const err = new TunnelError(ResetCode.GOING_AWAY, reason);
    for (const s of [...this.streams.values()]) this.failStream(s, err, true);
    this.closed = true;
    this.wakeWriters();
    for (const cb of this.closeCbs.splice(0)) cb(reason);
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

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
