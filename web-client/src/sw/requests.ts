/**
 * Which requests the service worker carries through the tunnel, and the
 * message that hands one to the shell page. Pure (no worker globals), so
 * it runs under Node's fetch classes too.
 */
import type { HeaderPairs } from '@peerway/protocol';
import type { BridgeRequest } from '../bridge';
import { readChunks, type BridgeBody, type ChunkedBody } from './body';

/** The parts of a Request that decide whether the worker takes it. */
export interface RequestKind {
  url: string;
  mode: RequestMode;
  destination: RequestDestination;
}

/**
 * The worker answers a request of the app unless it is for another
 * origin, for Peerway's own paths (/__peerway/…, the signaling socket), or
 * a top-level navigation (that gets the shell page from the server, so
 * reload and bookmarks work).
 */
export function carriedByTunnel(r: RequestKind, origin: string): boolean {
  const url = new URL(r.url);
  if (url.origin !== origin) return false;
  if (url.pathname.startsWith('/__peerway/') || url.pathname === '/ws/client') return false;
  return !(r.mode === 'navigate' && r.destination === 'document');
}

/** Whether a request of this method sends a body (all but GET and HEAD). */
export function sendsBody(method: string): boolean {
  return !['GET', 'HEAD'].includes(method);
}

/**
 * A request's upload as chunks (./body): its stream read up to HELD_BYTES,
 * or, where a browser gives a worker no request stream, its bytes in one.
 */
export async function bodyOfRequest(r: Request): Promise<ChunkedBody> {
  if (r.body) return readChunks(r.body);
  const bytes = new Uint8Array(await r.arrayBuffer());
  return { chunks: bytes.byteLength ? [bytes] : [], rest: null };
}

/**
 * The message that hands one request to the shell: method, path and query
 * on this origin, the fields as pairs, the upload (`body`, read by the
 * caller with bodyOfRequest; null when it sends none), and the request's destination
 * and credentials mode.
 */
export function bridgeRequestOf(r: Request, body: BridgeBody | null): BridgeRequest {
  const headers: HeaderPairs = [];
  r.headers.forEach((v, k) => headers.push([k, v]));
  const url = new URL(r.url);
  return {
    kind: 'peerway-fetch',
    method: r.method,
    path: url.pathname + url.search,
    headers,
    body,
    destination: r.destination,
    credentials: r.credentials,
  };
}
