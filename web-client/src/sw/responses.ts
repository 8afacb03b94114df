/**
 * The Responses the service worker answers the app with: the shell's answer
 * from the tunnel, or a plain-text error in words. Pure (no worker
 * globals), so it runs under Node's fetch classes too.
 */
import { responseFromHead } from '@peerway/protocol';
import type { BridgeResponse } from '../bridge';
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
 * status; an answer from the tunnel as the protocol builds one from a head
 * (its status, status text and fields, and its body unless the status
 * allows none).
 */
export function responseOf(res: BridgeResponse): Response {
  if (!res.ok) return new Response(res.message, { status: res.status, headers: TEXT });
  return responseFromHead(res, res.body);
}
