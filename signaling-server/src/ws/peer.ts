/**
 * One WebSocket peer (agent or client): parses every message once with the
 * protocol's parser, applies the per-connection rate limit, answers bad
 * messages with an `error` and closes only on repeated abuse. A handler that
 * throws costs only that message.
 */
import type { WebSocket, RawData } from 'ws';
import {
  PeerwayError,
  encodeMessage,
  type ParseResult,
  type ServerToAgent,
  type ServerToClient,
} from '@peerway/protocol';
import type { Logger } from '../logger';
import { AbuseMeter, TokenBucket } from './limits';
import type { Clock } from './clock';
import type { SignalingMetrics } from './metrics';

/** WebSocket close codes the server uses. */
export const CloseCode = {
  SHUTDOWN: 1001,
  BAD_AUTH: 4001,
  AUTH_TIMEOUT: 4002,
  ABUSE: 4008,
  REPLACED: 4009,
  PRESENCE_TIMEOUT: 4010,
  NODE_REMOVED: 4011,
  /** A client with no live session said nothing for the idle timeout (./client-timeouts.ts). */
  IDLE_TIMEOUT: 4012,
} as const;

export interface PeerLimits {
  messagesPerSecond: number;
  messageBurst: number;
  maxBadMessages: number;
  badWindowMs: number;
}

export class Peer<In, Out extends ServerToAgent | ServerToClient> {
  private readonly bucket: TokenBucket;
  private readonly abuse: AbuseMeter;
  closed = false;
  /** When the last valid message arrived (null: none yet); what the client timeouts watch. */
  lastMessageAt: number | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly ip: string,
    private readonly side: 'agent' | 'client',
    private readonly parse: (raw: RawData) => ParseResult<In>,
    private readonly log: Logger,
    private readonly metrics: SignalingMetrics,
    limits: PeerLimits,
    private readonly clock: Clock,
  ) {
    this.bucket = new TokenBucket(limits.messagesPerSecond, limits.messageBurst, clock);
    this.abuse = new AbuseMeter(limits.maxBadMessages, limits.badWindowMs, clock);
    ws.on('close', () => (this.closed = true));
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
  }

  /** Calls `handler` with each valid message. */
  listen(handler: (msg: In) => Promise<void> | void): void {
    this.ws.on('message', (raw, isBinary) => {
      this.metrics.messages.inc({ side: this.side });
      this.metrics.perMinute.messages.add();
      if (!this.bucket.take())
        return this.refuse(new PeerwayError('rate_limited', 'too many messages; slow down'));
      if (isBinary)
        return this.refuse(new PeerwayError('bad_message', 'signaling messages are JSON text'));
      const r = this.parse(raw);
      if (!r.ok) {
        if (r.unknownType) {
          // Newer peers may send types we do not know: log and ignore.
          this.log.info({ type: r.claimedType }, 'ignoring unknown message type');
          this.send({ type: 'error', code: 'bad_message', message: r.error.message } as Out);
          return;
        }
        return this.refuse(r.error);
      }
      this.lastMessageAt = this.clock.now();
      Promise.resolve()
        .then(() => handler(r.value))
        .catch((err: unknown) => {
          if (err instanceof PeerwayError) return this.refuse(err);
          this.log.error({ err }, 'handler failed');
          this.send({ type: 'error', code: 'internal', message: 'internal error' } as Out);
        });
    });
  }

  /** Answers a refused message with an error; closes after repeated abuse. */
  refuse(err: PeerwayError): void {
    this.metrics.badMessages.inc({ side: this.side, code: err.code });
    this.metrics.perMinute.errors.add();
    this.send({ type: 'error', code: err.code, message: err.message.slice(0, 500) } as Out);
    if (this.abuse.bad()) this.close(CloseCode.ABUSE, 'too many bad messages');
  }

  send(msg: Out): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(encodeMessage(msg));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason.slice(0, 120));
    // A peer that never completes the close handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}
