/**
 * The app's fetch() to its own origin, sent straight to the shell's tunnel
 * instead of through the service worker (the worker's two hops cost ~4 ms
 * of a ~6 ms small GET: bench/README.md). It mirrors what the browser's
 * fetch does with the answer: redirects followed as RFC 9110 §15.4 says,
 * no body for HEAD or a null body status, a Response that says its URL.
 * Anything it does not mirror exactly goes to the browser's fetch, and so
 * through the worker. No globals beyond the Fetch API's classes, so it
 * runs under Node too.
 */
import { hasNullBody, responseFromHead, type HeaderPairs } from '@peerway/protocol';
import type { BridgeRequest, BridgeResponse } from '../bridge';
import { ownChunk, readChunks, type BridgeBody } from '../sw/body';

/** Where the shim sends a request: the shell's tunnel. */
export interface FetchCarrier {
  fetch(req: BridgeRequest, signal: AbortSignal): Promise<BridgeResponse>;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** The most redirects one fetch() follows, as browsers do. */
const MAX_REDIRECTS = 20;
const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

const header = (h: HeaderPairs, name: string) => h.find(([k]) => k.toLowerCase() === name)?.[1];

/**
 * The shim takes a request to this origin, except for Peerway's own paths
 * and what it does not mirror: redirect "manual", integrity, keepalive.
 */
export function takesFetch(r: Request, u: URL, origin: string): boolean {
  return (
    u.origin === origin &&
    !u.pathname.startsWith('/__peerway/') &&
    u.pathname !== '/ws/client' &&
    r.redirect !== 'manual' &&
    !r.integrity &&
    !r.keepalive
  );
}

/** Whether a redirect turns the request into a GET without a body (RFC 9110 §15.4, as fetch() does it). */
export function redirectsToGet(status: number, method: string): boolean {
  return (
    (status === 303 && method !== 'HEAD') ||
    ((status === 301 || status === 302) && method === 'POST')
  );
}

/** A Response made here says where it came from, as one from the network does (also its clones). */
export function dress(r: Response, url: string, redirected: boolean): Response {
  const clone = r.clone.bind(r);
  return Object.defineProperties(r, {
    url: { value: url },
    redirected: { value: redirected },
    type: { value: 'basic' },
    clone: { value: () => dress(clone(), url, redirected) },
  });
}

/**
 * The Response for the shell's answer to a request of `method`: an error
 * as plain text with its status; an answer from the tunnel as the protocol
 * builds one from a head, with no body for HEAD or a null body status (the
 * unread body is then cancelled).
 */
export function answerResponse(res: BridgeResponse, method: string): Response {
  if (!res.ok) return new Response(res.message, { status: res.status, headers: TEXT });
  if (hasNullBody(res.status, method)) void res.body?.cancel().catch(() => {});
  return responseFromHead(res, res.body, method);
}

/**
 * A fetch() body as the shim hands it to the shell, never through a Blob
 * that was not one already: a string or bytes as one chunk of its own (a
 * copy, as fetch() takes one: the app may change its buffer afterwards), a
 * Blob or File as itself (read as a stream, in chunks, and again for a
 * retry or a 307), anything else (FormData, URLSearchParams, a stream, a
 * Request's body) from the Request's stream in chunks (./body: past
 * HELD_BYTES the rest stays a stream, which a 307/308 cannot send again,
 * as with the browser's fetch() of a stream).
 */
export async function bodyOfFetch(
  req: Request,
  init: BodyInit | null | undefined,
): Promise<BridgeBody | null> {
  if (!req.body) return null;
  if (typeof init === 'string') return { chunks: [new TextEncoder().encode(init)], rest: null };
  if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return ownChunk(init);
  if (init instanceof Blob) return init;
  return readChunks(req.body);
}

/** The body for the browser's own fetch() after a redirect to where the shim does not go. */
function nativeBody(body: BridgeBody | null): BodyInit | null {
  if (!body || body instanceof Blob) return body;
  return body.rest ? null : new Blob(body.chunks as BlobPart[]);
}

/**
 * The page's fetch(): requests the shim takes go to `shell`, the rest to
 * `nativeFetch`; `origin` is the page's.
 */
export function tunnelFetch(
  shell: FetchCarrier,
  nativeFetch: typeof fetch,
  origin: string,
): typeof fetch {
  return async function fetch(input: RequestInfo | URL, init?: RequestInit) {
    let req = new Request(input, init);
    let url = new URL(req.url);
    if (!takesFetch(req, url, origin)) return nativeFetch(req);
    const signal = req.signal;
    const aborted = () =>
      signal.reason ?? new DOMException('The user aborted a request.', 'AbortError');
    let body = await bodyOfFetch(req, init?.body);
    for (let hops = 0; ; hops++) {
      if (signal.aborted) throw aborted();
      const headers: HeaderPairs = [];
      req.headers.forEach((v, k) => headers.push([k, v]));
      const res = await shell.fetch(
        {
          kind: 'peerway-fetch',
          method: req.method,
          path: url.pathname + url.search,
          headers,
          body,
          destination: '',
          credentials: req.credentials,
        },
        signal,
      );
      if (signal.aborted) throw aborted();
      if (!res.ok) return answerResponse(res, req.method);
      const to = header(res.headers, 'location');
      if (REDIRECT.has(res.status) && to !== undefined) {
        void res.body?.cancel().catch(() => {});
        if (req.redirect === 'error' || hops >= MAX_REDIRECTS)
          throw new TypeError('Failed to fetch');
        const toGet = redirectsToGet(res.status, req.method);
        const next = new URL(to, url);
        const nextInit: RequestInit = {
          method: toGet ? 'GET' : req.method,
          headers: req.headers,
          credentials: req.credentials,
          cache: req.cache,
          signal,
        };
        if (toGet) body = null;
        req = new Request(next, nextInit);
        url = next;
        if (!takesFetch(req, url, origin))
          return nativeFetch(body ? new Request(req, { body: nativeBody(body) }) : req);
        continue;
      }
      return dress(answerResponse(res, req.method), url.href, hops > 0);
    }
  } as typeof fetch;
}
