/**
 * The Responses the service worker answers the app with: the shell's answer
 * from the tunnel, or a plain-text error in words. Pure (no worker
 * globals), so it runs under Node's fetch classes too.
 */
import type { BridgeResponse } from '../bridge';

/**
 * Fetch's null body statuses: a copy of NULL_BODY_STATUSES in
 * @peerway/protocol, since this script is bundled on its own terms (see
 * responseOf). Tests hold the two alike.
 */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

/** No shell page of this origin is open to carry the request. */
export function noShellResponse(): Response {
  return new Response('Peerway: open this page in a tab (no shell page is connected).', {
    status: 503,
  });
}

/** The shell did not answer in time. */
export const SHELL_TIMEOUT_ANSWER: BridgeResponse = {
  ok: false,
  status: 504,
  message: 'Peerway: the page did not answer in time',
};

/**
 * The Response for the shell's answer: an error as plain text with its
 * status; an answer from the tunnel with its status, status text and
 * fields (one a Response may not carry is dropped) and its body, unless
 * the status allows none. The same as `responseFromHead` in
 * @peerway/protocol, written out here: the worker is a classic script, and
 * a module it shared with the shim would become a chunk that neither can
 * import (tests hold the two alike).
 */
export function responseOf(res: BridgeResponse): Response {
  if (!res.ok) return new Response(res.message, { status: res.status, headers: TEXT });
  const h = new Headers();
  for (const [k, v] of res.headers) {
    try {
      h.append(k, v);
    } catch {
      // a header a Response may not carry is dropped
    }
  }
  return new Response(NULL_BODY.has(res.status) ? null : res.body, {
    status: res.status,
    statusText: res.statusText,
    headers: h,
  });
}
