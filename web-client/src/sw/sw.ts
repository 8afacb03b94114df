/// <reference lib="webworker" />
/**
 * The service worker of a service origin: answers every request of the app
 * by handing it to the shell page, which sends it through its data channel.
 * It passes to the network what it must not handle: Peerway's own assets
 * (/__peerway/…), the signaling socket, and top-level navigations (those get
 * the shell page from the server, so reload and bookmarks work).
 */
import type { BridgeResponse } from '../bridge';
import { transfersOf } from './body';
import { bodyOfRequest, bridgeRequestOf, carriedByTunnel, sendsBody } from './requests';
import { SHELL_TIMEOUT_ANSWER, noShellResponse, responseOf } from './responses';

declare const self: ServiceWorkerGlobalScope;

/** How long to wait for a shell page to answer. */
const SHELL_TIMEOUT_MS = 60_000;

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (e) => {
  if (!carriedByTunnel(e.request, self.location.origin)) return;
  e.respondWith(viaShell(e));
});

/** The shell that should carry this request: the focused top-level page of this origin, else any. */
async function findShell(): Promise<Client | undefined> {
  const all = (await self.clients.matchAll({
    type: 'window',
    includeUncontrolled: true,
  })) as WindowClient[];
  const tops = all.filter(
    (c) => c.frameType === 'top-level' && !new URL(c.url).pathname.startsWith('/__peerway/'),
  );
  return tops.find((c) => c.focused) ?? tops[0];
}

async function viaShell(e: FetchEvent): Promise<Response> {
  const shell = await findShell();
  if (!shell) return noShellResponse();
  const r = e.request;
  // Not as a Blob (the blob store's round trip held uploads to ~3 MB/s): the
  // request's own chunks, their buffers moved to the shell, and past
  // HELD_BYTES the rest as a transferred stream (./body). The shell keeps
  // what it sends of an idempotent request, so a retry can send it again.
  const body = sendsBody(r.method) ? await bodyOfRequest(r) : null;
  const req = bridgeRequestOf(r, body);
  const { port1, port2 } = new MessageChannel();
  const answer = new Promise<BridgeResponse>((resolve) => {
    const t = setTimeout(() => resolve(SHELL_TIMEOUT_ANSWER), SHELL_TIMEOUT_MS);
    port1.onmessage = (m) => (clearTimeout(t), resolve(m.data as BridgeResponse));
  });
  shell.postMessage(req, [port2, ...transfersOf(body)]);
  return responseOf(await answer);
}
