/**
 * Messages between the service worker and the shell page (same origin). The
 * worker cannot hold an RTCPeerConnection, so it hands each request of the
 * app to the shell, which sends it through the tunnel. Bodies travel as
 * transferred buffers and ReadableStreams, so nothing is copied on the way.
 */
import type { HeaderPairs } from '@peerway/protocol';
import type { BridgeBody } from './sw/body';

export type { HeaderPairs };

export interface BridgeRequest {
  kind: 'peerway-fetch';
  method: string;
  /** Path and query on the service origin. */
  path: string;
  headers: HeaderPairs;
  /** The upload, if any: chunks with transferred buffers (and a rest as a stream), or a Blob (./sw/body). */
  body: BridgeBody | null;
  destination: string;
  /** The request's credentials mode: "omit" sends no cookie from the jar and stores none. */
  credentials: RequestCredentials;
}

export type BridgeResponse =
  | {
      ok: true;
      status: number;
      statusText: string;
      headers: HeaderPairs;
      body: ReadableStream<Uint8Array> | null;
    }
  | { ok: false; status: number; message: string };

/** Injected config the server writes into the shell page. */
export interface ShellConfig {
  service: string;
  gateway: string;
  /** A public service's access token, given with the page. */
  token?: string;
}

export const SHIM_PATH = '/__peerway/shim.js';
export const SW_PATH = '/__peerway/sw.js';
