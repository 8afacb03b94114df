/**
 * TunnelMux: many concurrent HTTP and WebSocket streams over one ordered,
 * reliable FrameChannel. The same class runs on both ends: the client role
 * (browser shell, Node tunnel client) opens streams, the server role (node
 * agent) answers them. Browser-safe.
 *
 * This file is the session: it opens and answers streams, routes each
 * arriving frame (./dispatch holds the table), and ends streams. Beside it:
 * one stream's state (./stream), the session-level flow budget and send
 * gate (./flow), the sending of frames (./send), the settings (./options).
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
  WsCloseCode,
  MAX_CREDIT_BYTES,
  MAX_HEAD_BYTES,
  INITIAL_WINDOW_BYTES,
  type FrameTypeValue,
} from './wire';
import {
  decodeCodeReason,
  decodeFrame,
  decodeU32,
  encodeCodeReason,
  encodeFrame,
  encodeU32,
  type Frame,
} from './frame';
import type { FrameChannel } from './channel';
import { TunnelError } from './errors';
import {
  RequestHeadSchema,
  ResponseHeadSchema,
  WsAcceptHeadSchema,
  WsOpenHeadSchema,
  parseHead,
  type RequestHead,
  type WsOpenHead,
} from './head';
import { TunnelSocket } from './socket';
import { InboundBody } from './inbound';
import type {
  BodySource,
  IncomingTunnelRequest,
  IncomingTunnelSocket,
  TunnelResponse,
} from './api';
import { dispatchFrame, type FrameHandlers } from './dispatch';
import { ReceiveBudget, SendGate } from './flow';
import { muxSettings, type MuxOptions, type MuxSettings } from './options';
import { FrameSender } from './send';
import { Stream, type StreamKind } from './stream';

export {
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_FRAME_PAYLOAD_BYTES,
  DEFAULT_MAX_WS_MESSAGE_BYTES,
  DEFAULT_RECEIVE_BUDGET_BYTES,
  DEFAULT_RECEIVE_WINDOW_BYTES,
  type MuxOptions,
} from './options';
export { INITIAL_WINDOW_BYTES } from './wire';
export type {
  BodySource,
  IncomingTunnelRequest,
  IncomingTunnelSocket,
  TunnelResponse,
} from './api';

export class TunnelMux {
  readonly role: 'client' | 'server';
  private readonly settings: MuxSettings;
  private readonly gate: SendGate;
  private readonly budget: ReceiveBudget;
  private readonly streams = new Map<number, Stream>();
  /** Highest stream id the peer opened (server role) or we opened (client role). */
  private lastId = 0;
  private pings = new Map<number, { start: number; resolve: (ms: number) => void }>();
  private pingSeq = 0;
  private closed = false;
  private closeCbs: ((reason: string) => void)[] = [];
  private requestHandler: ((req: IncomingTunnelRequest) => void) | null = null;
  private socketHandler: ((s: IncomingTunnelSocket) => void) | null = null;
  private readonly handlers: FrameHandlers;
  private readonly sender: FrameSender;
  /** Bytes of DATA received, for load reports. */
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
    this.settings = muxSettings(channel, opts);
    this.role = this.settings.role;
    this.budget = new ReceiveBudget(
      this.settings.receiveWindowBytes,
      this.settings.receiveBudgetBytes,
    );
    this.gate = new SendGate(channel, this.settings.highWaterMarkBytes);
    this.sender = new FrameSender(
      channel,
      this.gate,
      this.settings.maxPayloadBytes,
      () => this.closed,
      (id, message) => {
        this.settings.onProtocolError(id, `send failed: ${message}`);
        this.close('send failed');
      },
    );
    this.handlers = {
      ping: (f) => this.onPing(f),
      pong: (f) => this.onPong(f),
      goAway: (f) => this.onGoAway(f),
      openingHead: (f) => this.onOpeningHead(f),
      replyHead: (f) => this.onReplyHead(f),
      data: (f) => this.onData(f),
      end: (f) => this.onEnd(f),
      reset: (f) => this.onReset(f),
      credit: (f) => this.onCredit(f),
      socketFrame: (f) => this.onSocketFrame(f),
    };
    channel.onMessage((m) => this.onMessage(m));
    channel.onClose(() => this.shutdown('the data channel closed'));
  }

  /** Bytes of DATA and WebSocket messages sent, for load reports. */
  get bytesSent(): number {
    return this.sender.bytesSent;
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
      this.sender.head(FrameType.REQ_HEAD, stream.id, head);
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
      this.sender.head(FrameType.WS_OPEN, stream.id, head);
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
      this.sender.control(FrameType.PING, 0, encodeU32(nonce));
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
      this.settings.onProtocolError(r.streamId, r.reason);
      if (r.streamId) this.resetById(r.streamId, ResetCode.PROTOCOL_ERROR, r.reason);
      return;
    }
    try {
      if (!dispatchFrame(r.frame, this.handlers))
        this.settings.onProtocolError(
          r.frame.streamId,
          `unhandled frame type ${String(r.frame.type)}`,
        );
    } catch (err) {
      // A bug or a hostile frame must only cost its own stream.
      const reason = err instanceof Error ? err.message : String(err);
      this.settings.onProtocolError(r.frame.streamId, reason);
      if (r.frame.streamId) this.resetById(r.frame.streamId, ResetCode.INTERNAL, 'internal error');
    }
  }

  private onPing(f: Frame): void {
    if (f.payload.byteLength === 4) this.sender.control(FrameType.PONG, 0, f.payload);
  }

  private onPong(f: Frame): void {
    const n = decodeU32(f.payload);
    const p = n === null ? undefined : this.pings.get(n);
    if (p && n !== null) {
      this.pings.delete(n);
      p.resolve(now() - p.start);
    }
  }

  private onGoAway(f: Frame): void {
    this.shutdown(decodeCodeReason(f.payload)?.reason || 'the peer went away');
    this.channel.close();
  }

  private onReset(f: Frame): void {
    const s = this.streamFor(f, false);
    const cr = decodeCodeReason(f.payload);
    if (s)
      this.failStream(
        s,
        new TunnelError(cr?.code ?? ResetCode.PROTOCOL_ERROR, cr?.reason || 'reset by peer'),
        false,
      );
  }

  private onCredit(f: Frame): void {
    const s = this.streamFor(f, false);
    const n = decodeU32(f.payload);
    if (!s) return;
    if (n === null || n === 0) return this.protocolReset(s, 'malformed CREDIT');
    if (s.sendCredit + n > MAX_CREDIT_BYTES)
      return this.protocolReset(s, 'CREDIT beyond 1 GiB', ResetCode.FLOW_CONTROL);
    s.addCredit(n);
  }

  private onSocketFrame(f: Frame): void {
    const s = this.streamFor(f, true);
    if (!s) return;
    if (s.kind !== 'ws' || !s.socket)
      return this.protocolReset(s, 'WebSocket frame on a stream that is not an open WebSocket');
    if (f.type === FrameType.WS_MSG) {
      const err = s.socket.receiveFragment(
        f.payload,
        (f.flags & FrameFlag.BINARY) !== 0,
        (f.flags & FrameFlag.MORE) !== 0,
        this.settings.maxWsMessageBytes,
      );
      if (err) this.protocolReset(s, err);
    } else {
      const cr = decodeCodeReason(f.payload) ?? { code: WsCloseCode.NO_STATUS, reason: '' };
      s.socket.receiveClose(cr.code, cr.reason);
      this.finish(s);
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
      this.settings.onProtocolError(
        f.streamId,
        `frame type ${f.type} for a stream that was never opened`,
      );
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
    if (this.streams.size >= this.settings.maxStreams) {
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
    const r = s.addHeadFragment(f.payload, (f.flags & FrameFlag.MORE) !== 0);
    if (r === 'more') return;
    if (r === 'too-large')
      return this.protocolReset(
        s,
        `head larger than ${MAX_HEAD_BYTES} bytes`,
        ResetCode.FRAME_TOO_LARGE,
      );
    if (s.onHead) s.onHead(f.type, r.head);
    else this.onIncoming(s, f.type, r.head);
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
          this.sender.head(FrameType.RES_HEAD, s.id, rh);
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
          this.sender.head(FrameType.WS_ACCEPT, s.id, full);
          return s.socket;
        },
        reject: (status, statusText) => {
          if (answered) throw new Error('already answered');
          answered = true;
          this.sender.head(FrameType.RES_HEAD, s.id, { status, statusText, headers: [] });
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
        this.sender.control(FrameType.CREDIT, s.id, encodeU32(f.payload.byteLength));
      return;
    }
    if (!s.inbound || s.inbound.isEnded || !s.headDone)
      return this.protocolReset(s, 'DATA on a stream that is not receiving a body');
    if (!s.inbound.push(f.payload, this.settings.ownsMessages)) {
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

  private makeInbound(s: Stream): InboundBody {
    return new InboundBody(
      INITIAL_WINDOW_BYTES,
      (n) => this.sender.control(FrameType.CREDIT, s.id, encodeU32(n)),
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
    if (!s.inbound || s.closed) return;
    const extra = this.budget.take();
    if (extra <= 0) return;
    s.extraWindow = extra;
    s.inbound.grow(extra);
    this.sender.control(FrameType.CREDIT, s.id, encodeU32(extra));
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
        if (!(await this.sender.data(s, value))) return;
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
    this.sender.control(FrameType.END, s.id);
    s.localEnded = true;
    this.maybeFinish(s);
  }

  private socketIo(s: Stream) {
    return {
      sendMessage: (data: Uint8Array, binary: boolean) =>
        this.sender.socketMessage(s, data, binary),
      sendClose: (code: number, reason: string) =>
        this.sender.control(FrameType.WS_CLOSE, s.id, encodeCodeReason(code, reason)),
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
    this.budget.release(s.extraWindow);
    s.extraWindow = 0;
    s.settle();
  }

  private protocolReset(s: Stream, reason: string, code: number = ResetCode.PROTOCOL_ERROR): void {
    this.settings.onProtocolError(s.id, reason);
    this.resetStream(s, code, reason);
  }

  private resetById(id: number, code: number, reason: string): void {
    const s = this.streams.get(id);
    if (s) this.resetStream(s, code, reason);
    else this.sendReset(id, code, reason);
  }

  private sendReset(id: number, code: number, reason: string): void {
    this.sender.control(FrameType.RESET, id, encodeCodeReason(code, reason));
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
    s.fail(err, local);
  }

  private shutdown(reason: string): void {
    if (this.closed) return;
    const err = new TunnelError(ResetCode.GOING_AWAY, reason);
    for (const s of [...this.streams.values()]) this.failStream(s, err, true);
    this.closed = true;
    this.gate.close();
    for (const cb of this.closeCbs.splice(0)) cb(reason);
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
