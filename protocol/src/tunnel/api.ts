/**
 * What the two roles of a tunnel see: the client's answer to a request,
 * the bodies it may send, and the requests and WebSocket opens the server
 * role is handed. Implemented by ./mux. Browser-safe.
 */
import type { TunnelSocket } from './socket';
import type { RequestHead, ResponseHead, WsAcceptHead, WsOpenHead } from './head';
import type { HeaderPairs } from './wire';

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
