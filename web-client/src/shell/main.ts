/**
 * The shell page of a service origin: gets an access token, opens the tunnel,
 * registers the service worker, shows the app in a full-window iframe at the
 * requested path, keeps the address bar and title in step, and reconnects by
 * itself (to another replica when there is one), retrying idempotent
 * requests that were in flight.
 */
import { PeerwayError, TunnelError, type EngineName, type TunnelSocket } from '@peerway/protocol';
import {
  SHIM_PATH,
  SW_PATH,
  type BridgeRequest,
  type BridgeResponse,
  type ShellConfig,
} from '../bridge';
import { BodyReplay } from '../sw/body';
import type { CookieStore } from './cookies';
import { injectShim } from './inject';
import { NeedsEngine, openTunnel, type OpenTunnel } from './session';
import { badge, showStatus, statusState } from './status';
import { authorize, consumeCallback, currentPath, forgetToken, getToken } from './token';

declare global {
  interface Window {
    __PEERWAY__?: ShellConfig;
    __peerway?: ShellApi;
  }
}

/** What the shim inside the iframe calls on its parent (same origin). */
export interface ShellApi {
  openWebSocket(path: string, protocols: string[]): Promise<TunnelSocket>;
  cookieGet(path: string): string;
  cookieSet(path: string, value: string): void;
  navigated(): void;
  /** One request of the app's fetch(), straight from its page (no service worker hop). */
  fetch(req: BridgeRequest, signal: AbortSignal): Promise<BridgeResponse>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Request destinations that load a document of the app (a frame: it needs the shim). */
const DOCUMENT_DESTINATIONS = new Set(['iframe', 'frame', 'document']);
const RETRY_DELAYS_MS = [0, 500, 1000, 2000, 3000, 5000];

const cfg: ShellConfig = window.__PEERWAY__ ?? {
  service: location.hostname.split('.')[0]!,
  gateway: location.origin,
};
// The cookie jar (tough-cookie, 28 KB without the public suffix list: see
// ./registrable-domain.ts) is loaded once the node's answer is in, while ICE
// and DTLS run off the main thread, instead of before the tunnel starts.
// Nothing needs it before the app's first request, which waits for it.
// (With the list it was 298 KB, and fetching and evaluating it held up the
// app's frame by 30-80 ms after the data channel had opened.)
let jarLoad: Promise<CookieStore> | null = null;
const jarReady = (): Promise<CookieStore> =>
  (jarLoad ??= import('./cookies').then((m) => (jar = new m.CookieStore(location.origin))));
/**
 * Set before any of the app's documents arrive: serve() awaits jarReady
 * before it sends a request, so the app's scripts find it.
 */
let jar: CookieStore | undefined;
const frame = document.getElementById('app') as HTMLIFrameElement;
/** The app's frame has loaded once (later failures are reconnects: a badge, not a page). */
let appShown = false;

let tunnel: OpenTunnel | null = null;
const waiting: ((t: OpenTunnel) => void)[] = [];
let lastNode: string | null = null;
/** The first time a node answered this page (the app's frame may start then). */
let nodeAnswered!: () => void;
const answered = new Promise<true>((r) => (nodeAnswered = () => r(true)));
/**
 * The engine this tab's network needs the node to answer with (see
 * NeedsEngine), kept for reloads; the page script reads it too (early.ts).
 */
const ENGINE_KEY = 'peerway:engine';
let engine: EngineName | undefined = (() => {
  try {
    return sessionStorage.getItem(ENGINE_KEY) === 'werift' ? 'werift' : undefined;
  } catch {
    return undefined;
  }
})();
let connecting = false;

/** The open tunnel, or the next one. */
function currentTunnel(): Promise<OpenTunnel> {
  if (tunnel && !tunnel.mux.isClosed) return Promise.resolve(tunnel);
  return new Promise((r) => waiting.push(r));
}

function explain(err: unknown): void {
  const e =
    err instanceof PeerwayError ? err : new PeerwayError('session_failed', (err as Error).message);
  switch (e.code) {
    case 'service_offline':
      showStatus(
        'offline',
        `${cfg.service} is offline`,
        `The node that serves ${cfg.service} is not connected right now. This page connects by itself as soon as it is back.`,
      );
      return;
    case 'forbidden':
      showStatus('denied', 'No access', `${e.message}`, {
        label: 'Sign in as someone else',
        run: () => (forgetToken(), authorize(cfg)),
      });
      return;
    case 'unauthorized':
    case 'expired':
      forgetToken();
      showStatus('denied', 'Sign-in needed', e.message, {
        label: 'Sign in',
        run: () => authorize(cfg),
      });
      return;
    case 'service_unknown':
      showStatus(
        'unknown',
        'No such service',
        `There is no service called "${cfg.service}" on this Peerway server. Check the address.`,
      );
      return;
    default:
      showStatus('error', 'Could not connect', e.message, {
        label: 'Try again',
        run: () => void connect(),
      });
  }
}

/**
 * A tunnel is open: nothing the shell put up while it had none may stay
 * (the badge, and the offline or error card over the app). Before the app
 * has shown, the card says it is loading until the app's frame is in.
 */
function connected(): void {
  badge('');
  if (appShown) showStatus('ready', '', '');
  else if (statusState() !== 'connecting')
    showStatus(
      'connecting',
      `Connecting to ${cfg.service}…`,
      'The node that serves it answered: loading the app.',
    );
}

/** Opens (or reopens) the tunnel, retrying while the node is offline. */
async function connect(): Promise<void> {
  if (connecting) return;
  connecting = true;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const token = await getToken(cfg);
        performance.mark('peerway:token');
        const t = await openTunnel(
          cfg.service,
          token,
          attempt < 3 && lastNode ? [lastNode] : [],
          () => {
            void jarReady();
            nodeAnswered();
          },
          engine,
        );
        tunnel = t;
        // for benchmarks and curious users: how long the last tunnel took to open
        document.documentElement.dataset.peerwaySetupMs = String(Math.round(t.setupMs));
        lastNode = t.node.shortId;
        t.mux.onClose(() => {
          if (tunnel !== t) return;
          tunnel = null;
          badge('Reconnecting…');
          void connect();
        });
        connected();
        for (const w of waiting.splice(0)) w(t);
        return;
      } catch (err) {
        if (err instanceof NeedsEngine && !engine) {
          engine = err.engine; // and at once: nothing is wrong but the engine
          try {
            sessionStorage.setItem(ENGINE_KEY, engine);
          } catch {
            // no storage: a reload finds out again
          }
          continue;
        }
        const code = err instanceof PeerwayError ? err.code : 'session_failed';
        if (code === 'forbidden' || code === 'service_unknown') return explain(err);
        if (code === 'unauthorized' || code === 'expired') {
          forgetToken();
          if (attempt > 0) return explain(err);
          continue;
        }
        // Until the app has shown, every failure is the page's to explain
        // (the frame may be navigating already, waiting for the tunnel).
        if (!appShown || code === 'service_offline') explain(err);
        await new Promise((r) =>
          setTimeout(r, RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]! + 1000),
        );
      }
    }
  } finally {
    connecting = false;
  }
}

/** One request of the app (from the service worker, or from the shim's fetch), through the tunnel. */
async function serve(req: BridgeRequest, signal?: AbortSignal): Promise<BridgeResponse> {
  const headers = req.headers.filter(([k]) => k.toLowerCase() !== 'cookie');
  const cookies = await jarReady();
  const withCookies = req.credentials !== 'omit';
  const cookie = withCookies ? cookies.header(req.path) : '';
  if (cookie) headers.push(['cookie', cookie]);
  const retryable = IDEMPOTENT.has(req.method);
  // What a retry needs of the upload: BodyReplay keeps the chunks it was
  // handed and, for a request that may be retried, what it reads of the
  // rest; a Blob (from the shim) is read again.
  const upload = new BodyReplay(req.body, retryable);
  for (let attempt = 0; ; attempt++) {
    const t = await currentTunnel();
    try {
      // A fresh stream of the body on each attempt: a retry sends it again.
      const body = upload.stream();
      const res = await t.mux.request({ method: req.method, path: req.path, headers }, body, {
        ...(signal ? { signal } : {}),
      });
      const setCookies = res.headers
        .filter(([k]) => k.toLowerCase() === 'set-cookie')
        .map(([, v]) => v);
      if (withCookies) cookies.fromResponse(req.path, setCookies);
      const out = res.headers.filter(([k]) => k.toLowerCase() !== 'set-cookie');
      const type = out.find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
      // Only a document gets the shim: the app's own fetch() or XHR of an
      // HTML page (destination '') gets its bytes as they are.
      const isDoc = DOCUMENT_DESTINATIONS.has(req.destination);
      let stream: ReadableStream<Uint8Array> | null = res.body;
      if (isDoc && /text\/html/i.test(type) && req.method !== 'HEAD') {
        stream = injectShim(res.body, `<script src="${SHIM_PATH}"></script>`);
        // the length changes with the injected tag
        for (let i = out.length - 1; i >= 0; i--)
          if (out[i]![0].toLowerCase() === 'content-length') out.splice(i, 1);
      }
      return {
        ok: true,
        status: res.status,
        statusText: res.statusText,
        headers: out,
        body: stream,
      };
    } catch (err) {
      // A tunnel that died under an idempotent request: retry on the next one.
      if (
        retryable &&
        upload.replayable &&
        err instanceof TunnelError &&
        attempt < 2 &&
        (t.mux.isClosed || err.code === 10)
      )
        continue;
      return { ok: false, status: 502, message: `Peerway: ${(err as Error).message}` };
    }
  }
}

function syncAddressBar(): void {
  try {
    const w = frame.contentWindow!;
    const path = w.location.pathname + w.location.search + w.location.hash;
    if (w.location.origin === location.origin && path !== currentPath())
      history.replaceState(null, '', path);
    const title = frame.contentDocument?.title;
    document.title = title || cfg.service;
  } catch {
    // the app navigated somewhere else (another origin): leave the bar alone
  }
}

async function main(): Promise<void> {
  // Marks of a cold open, for `npm run bench` and the browser's performance panel.
  performance.mark('peerway:start');
  if (consumeCallback()) return;
  showStatus(
    'connecting',
    `Connecting to ${cfg.service}…`,
    'Opening a peer-to-peer connection to the node that serves it.',
  );
  if (!('serviceWorker' in navigator)) {
    showStatus(
      'error',
      'This browser cannot open Peerway services here',
      'Service workers are off: open the page over HTTPS (or on localhost) in a current browser.',
    );
    return;
  }
  navigator.serviceWorker.addEventListener('message', (ev: MessageEvent) => {
    const req = ev.data as BridgeRequest;
    const port = ev.ports[0];
    if (req?.kind !== 'peerway-fetch' || !port) return;
    void serve(req).then((res) =>
      port.postMessage(res, res.ok && res.body ? [res.body as unknown as Transferable] : []),
    );
  });
  window.__peerway = {
    openWebSocket: async (path, protocols) =>
      (await currentTunnel()).mux.openWebSocket({
        path,
        protocols,
        headers: cookieHeaders(await jarReady(), path),
      }),
    // the app's scripts run only once the jar is there (see below)
    cookieGet: (path) => jar?.scriptGet(path) ?? '',
    cookieSet: (path, v) => jar?.scriptSet(path, v),
    navigated: syncAddressBar,
    fetch: serve,
  };
  // The worker and the tunnel do not depend on each other: set both up at
  // once. The frame starts once the worker controls it and a node has
  // answered, before the channel is open: the browser's set-up of the
  // frame's navigation (20-45 ms) then overlaps ICE, DTLS and SCTP, and the
  // worker hands the request to serve(), which waits for the tunnel. (Not
  // before the answer: a refused page, or one whose node is offline for
  // long, must not leave the frame on a failed navigation.)
  const opened = connect();
  await navigator.serviceWorker
    .register(SW_PATH, { scope: '/' })
    .then(() => navigator.serviceWorker.ready);
  performance.mark('peerway:worker');
  // (connect() ends without an answer only when the page was refused: the status says why)
  if (!(await Promise.race([answered, opened.then(() => false)]))) return;
  frame.addEventListener('load', () => {
    appShown = true;
    syncAddressBar();
    showStatus('ready', '', '');
    frame.style.display = 'block';
  });
  performance.mark('peerway:frame');
  frame.src = currentPath();
  window.addEventListener('popstate', () => {
    // Back/forward in the outer bar: show the same page in the app.
    if (
      frame.contentWindow &&
      currentPath() !== frame.contentWindow.location.pathname + frame.contentWindow.location.search
    )
      frame.contentWindow.location.replace(currentPath());
  });
  await opened;
}

function cookieHeaders(cookies: CookieStore, path: string): [string, string][] {
  const c = cookies.header(path);
  return c ? [['cookie', c]] : [];
}

void main().catch((err: unknown) => explain(err));
