/// <reference lib="webworker" />
/**
 * The service worker of a service origin: answers every request of the app
 * by handing it to the shell page, which sends it through its data channel.
 * It passes to the network what it must not handle: Peerway's own assets
 * (/__peerway/…), the signaling socket, and top-level navigations (those get
 * the shell page from the server, so reload and bookmarks work).
 */
import type { BridgeResponse } from '../bridge';
import { bridgeRequestOf, carriedByTunnel, sendsBody } from './requests';
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
  // As a Blob: Chromium keeps a large one in its blob store (on disk past a
  // limit), postMessage passes it by reference, and the shell reads it as a
  // stream, so no copy of the upload sits whole in a JavaScript heap. A Blob
  // can also be read again, so an idempotent upload survives a reconnect.
  const body = sendsBody(r.method) ? await r.blob() : null;
  const req = bridgeRequestOf(r, body);
  const { port1, port2 } = new MessageChannel();
  const answer = new Promise<BridgeResponse>((resolve) => {
    const t = setTimeout(() => resolve(SHELL_TIMEOUT_ANSWER), SHELL_TIMEOUT_MS);
    port1.onmessage = (m) => (clearTimeout(t), resolve(m.data as BridgeResponse));
  });
  shell.postMessage(req, [port2]);
  return responseOf(await answer);
}
