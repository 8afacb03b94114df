/**
 * The agent's connection to the server: connect, answer the challenge,
 * heartbeat, and reconnect forever with backoff (also when the very first
 * attempt fails). Liveness is its own concern here: no message from the
 * server for `livenessTimeoutMs` drops the socket and reconnects. Open data
 * channels do not depend on this connection.
 */
import WebSocket from 'ws';
import {
  encodeMessage,
  parseServerToAgent,
  type AgentToServer,
  type ServerToAgent,
  type ServiceAnnouncement,
} from '@peerway/protocol';
import { signChallenge, type NodeIdentity } from '@peerway/protocol/node';
import type { Logger } from 'pino';
import { nextDelay } from './policy';
import { describeSocketFailure, type ConnectionEvent } from './connection-report';

/** The part of a `ws` WebSocket the connection uses (tests pass a fake). */
export interface ServerSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', cb: (data: Buffer | ArrayBuffer | Buffer[]) => void): unknown;
  on(event: 'close', cb: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
}

/** How long the first message (the challenge) may take, in ms. */
export const FIRST_MESSAGE_TIMEOUT_MS = 20_000;
/** With no message for this many heartbeat intervals the server counts as gone… */
export const LIVENESS_HEARTBEATS = 3;
/** …but never sooner than this, in ms. */
export const MIN_LIVENESS_TIMEOUT_MS = 15_000;

/** Close code: the node's owner removed it (see protocol/README.md). */
export const CLOSE_NODE_REMOVED = 4011;

export interface ConnectionOptions {
  /** The owner removed this node: the connection stops for good. */
  onRemoved?: () => void;
  serverUrl: string;
  identity: NodeIdentity;
  name: string;
  version: string;
  token?: string | undefined;
  claimToken?: () => string;
  services: () => ServiceAnnouncement[];
  load: () => Extract<AgentToServer, { type: 'heartbeat' }>['load'];
  onMessage: (m: Exclude<ServerToAgent, { type: 'challenge' | 'heartbeat-ack' }>) => void;
  onState?: (state: 'connecting' | 'connected' | 'disconnected', detail?: string) => void;
  /** The connection came up or went down, with why in words (see ./connection-report). */
  onEvent?: (e: ConnectionEvent) => void;
  log: Logger;
  rand?: () => number;
  /** Opens the socket (default: a `ws` WebSocket with a 10 s handshake timeout). */
  createSocket?: (url: string) => ServerSocket;
}

const OPEN = 1;

export class ServerConnection {
  private ws: ServerSocket | null = null;
  private attempt = 0;
  private stopped = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatMs = 10_000;
  /** The liveness timer dropped the current socket. */
  private quiet = false;
  connected = false;

  constructor(private readonly o: ConnectionOptions) {}

  start(): void {
    this.connect();
  }

  send(m: AgentToServer): void {
    if (this.ws?.readyState === OPEN) this.ws.send(encodeMessage(m));
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'agent stopping');
    this.ws?.terminate();
  }

  private wsUrl(): string {
    const u = new URL('/ws/agent', this.o.serverUrl);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  }

  private connect(): void {
    if (this.stopped) return;
    this.o.onState?.('connecting');
    const ws: ServerSocket = this.o.createSocket
      ? this.o.createSocket(this.wsUrl())
      : new WebSocket(this.wsUrl(), { handshakeTimeout: 10_000 });
    this.ws = ws;
    let authed = false;
    let failure: (Error & { code?: string }) | null = null;
    this.quiet = false;
    this.armLiveness(FIRST_MESSAGE_TIMEOUT_MS);
    ws.on('message', (raw) => {
      if (this.ws !== ws) return;
      this.armLiveness(Math.max(LIVENESS_HEARTBEATS * this.heartbeatMs, MIN_LIVENESS_TIMEOUT_MS));
      const r = parseServerToAgent(raw);
      if (!r.ok) {
        this.o.log.warn(
          { err: r.error.message },
          r.unknownType ? 'ignoring unknown message from server' : 'bad message from server',
        );
        return;
      }
      const m = r.value;
      switch (m.type) {
        case 'challenge': {
          const timestamp = Date.now();
          const auth: AgentToServer = {
            type: 'auth',
            nodeId: this.o.identity.nodeId,
            timestamp,
            signature: signChallenge(this.o.identity, m.serverUrl, m.nonce, timestamp),
            name: this.o.name,
            version: this.o.version,
            services: this.o.services(),
            ...(this.o.token ? { token: this.o.token } : {}),
            ...(this.o.claimToken ? { claimToken: this.o.claimToken() } : {}),
          };
          this.send(auth);
          return;
        }
        case 'welcome':
          authed = true;
          this.attempt = 0;
          this.connected = true;
          this.heartbeatMs = m.heartbeatIntervalMs;
          this.startHeartbeat();
          this.o.onState?.('connected');
          this.o.onEvent?.({ state: 'connected' });
          this.o.onMessage(m);
          return;
        case 'heartbeat-ack':
          return;
        default:
          this.o.onMessage(m);
      }
    });
    ws.on('error', (err) => {
      failure ??= err;
      this.o.log.debug({ err: err.message }, 'server connection error');
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.clearTimers();
      this.o.onState?.('disconnected', `${code} ${reason.toString()}`.trim());
      if (code !== CLOSE_NODE_REMOVED && !this.stopped)
        this.o.onEvent?.({
          state: 'down',
          reason: this.quiet
            ? 'the server stopped answering'
            : describeSocketFailure(failure, code, reason.toString()),
          wasConnected: authed,
        });
      if (!authed && code === 4001)
        this.o.log.error({ reason: reason.toString() }, "the server refused this node's proof");
      if (code === CLOSE_NODE_REMOVED) {
        // Coming back with the same token would claim it again, undoing the owner's decision.
        this.stopped = true;
        this.o.onRemoved?.();
        return;
      }
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = nextDelay(this.attempt++, this.o.rand);
    this.o.log.info({ delayMs: delay, attempt: this.attempt }, 'reconnecting to the server');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      const load = this.o.load();
      this.send({ type: 'heartbeat', ...(load ? { load } : {}) });
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private armLiveness(ms: number): void {
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    this.livenessTimer = setTimeout(() => {
      this.o.log.warn('the server went quiet; reconnecting');
      this.quiet = true;
      this.ws?.terminate();
    }, ms);
    this.livenessTimer.unref();
  }

  private clearTimers(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    this.heartbeatTimer = null;
    this.livenessTimer = null;
  }
}
