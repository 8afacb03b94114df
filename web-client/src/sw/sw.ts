/// <reference lib="webworker" />
/**
 * The service worker of a service origin: answers every request of the app
 * by handing it to the shell page, which sends it through its data channel.
 * It passes to the network what it must not handle: Peerway's own assets
 * (/__peerway/…), the signaling socket, and top-level navigations (those get
 * the shell page from the server, so reload and bookmarks work).
 */
import type { BridgeRequest, BridgeResponse } from '../bridge';

declare const self: ServiceWorkerGlobalScope;

const NULL_BODY = new Set([101, 103, 204, 205, 304]);
/** How long to wait for a shell page to answer. */
const SHELL_TIMEOUT_MS = 60_000;

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/__peerway/') || url.pathname === '/ws/client') return;
  if (e.request.mode === 'navigate' && e.request.destination === 'document') return;
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
  if (!shell)
    return new Response('Peerway: open this page in a tab (no shell page is connected).', {
      status: 503,
    });
  const r = e.request;
  const hasBody = !['GET', 'HEAD'].includes(r.method);
  // As a Blob: Chromium keeps a large one in its blob store (on disk past a
  // limit), postMessage passes it by reference, and the shell reads it as a
  // stream, so no copy of the upload sits whole in a JavaScript heap. A Blob
  // can also be read again, so an idempotent upload survives a reconnect.
  const body = hasBody ? await r.blob() : null;
  const headers: [string, string][] = [];
  r.headers.forEach((v, k) => headers.push([k, v]));
  const url = new URL(r.url);
  const req: BridgeRequest = {
    kind: 'peerway-fetch',
    method: r.method,
    path: url.pathname + url.search,
    headers,
    body,
    destination: r.destination,
    credentials: r.credentials,
  };
  const { port1, port2 } = new MessageChannel();
  const answer = new Promise<BridgeResponse>((resolve) => {
    const t = setTimeout(
      () =>
        resolve({ ok: false, status: 504, message: 'Peerway: the page did not answer in time' }),
      SHELL_TIMEOUT_MS,
    );
    port1.onmessage = (m) => (clearTimeout(t), resolve(m.data as BridgeResponse));
  });
  shell.postMessage(req, [port2]);
  const res = await answer;
  if (!res.ok)
    return new Response(res.message, {
      status: res.status,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  // (the shim builds its fetch() Responses the same way: keep the two alike)
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
