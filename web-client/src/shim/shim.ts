/**
 * Injected into every HTML page of the app (first thing in <head>): what a
 * service worker cannot do, done through the shell (the parent window, same
 * origin). `new WebSocket(...)` to this origin goes through the tunnel;
 * `document.cookie` reads and writes Peerway's per-service jar (HttpOnly
 * cookies stay invisible); history changes keep the address bar in step.
 * Same-origin `fetch()` calls go straight to the shell's tunnel instead of
 * through the service worker: the worker hop (fetch event, postMessage to
 * the shell, a MessagePort back) costs ~4 ms of a ~6 ms warm request, the
 * direct call ~0.3 ms (bench/README.md). Requests a page makes without
 * fetch() (subresources, XHR, forms) still take the worker path.
 */
import type { ShellApi } from '../shell/main';
import type { TunnelSocket } from '@peerway/protocol';

const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

const header = (h: [string, string][], name: string) =>
  h.find(([k]) => k.toLowerCase() === name)?.[1];

/** A Response made here says where it came from, as one from the network does (also its clones). */
function dress(r: Response, url: string, redirected: boolean): Response {
  const clone = r.clone.bind(r);
  return Object.defineProperties(r, {
    url: { value: url },
    redirected: { value: redirected },
    type: { value: 'basic' },
    clone: { value: () => dress(clone(), url, redirected) },
  });
}

(() => {
  let shell: ShellApi | undefined;
  try {
    shell =
      window.parent !== window
        ? (window.parent as Window & { __peerway?: ShellApi }).__peerway
        : undefined;
  } catch {
    shell = undefined;
  }
  if (!shell) return;
  const api = shell;
  const NativeWebSocket = window.WebSocket;

  class PeerwayWebSocket extends EventTarget {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSING = 2;
    static readonly CLOSED = 3;
    readonly CONNECTING = 0;
    readonly OPEN = 1;
    readonly CLOSING = 2;
    readonly CLOSED = 3;
    readyState = 0;
    protocol = '';
    extensions = '';
    bufferedAmount = 0;
    binaryType: BinaryType = 'blob';
    readonly url: string;
    onopen: ((ev: Event) => unknown) | null = null;
    onmessage: ((ev: MessageEvent) => unknown) | null = null;
    onerror: ((ev: Event) => unknown) | null = null;
    onclose: ((ev: CloseEvent) => unknown) | null = null;
    private sock: TunnelSocket | null = null;
    private queue: (string | Uint8Array)[] = [];

    constructor(url: string | URL, protocols?: string | string[]) {
      super();
      const u = new URL(String(url), location.href);
      this.url = u.toString();
      const list =
        protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols];
      api.openWebSocket(u.pathname + u.search, list).then(
        (s) => {
          this.sock = s;
          if (this.readyState === 3) return s.close(1000, '');
          this.readyState = 1;
          this.protocol = s.protocol;
          s.onMessage((m) => this.deliver(m));
          s.onClose((code, reason) => this.closed(code, reason));
          this.fire(new Event('open'));
          for (const m of this.queue.splice(0)) void s.send(m);
        },
        () => {
          this.fire(new Event('error'));
          this.closed(1006, '');
        },
      );
    }

    private fire(ev: Event): void {
      const h = (this as unknown as Record<string, unknown>)[`on${ev.type}`];
      if (typeof h === 'function') h.call(this, ev);
      this.dispatchEvent(ev);
    }

    private deliver(m: string | Uint8Array): void {
      let data: unknown = m;
      if (typeof m !== 'string') {
        // copy into this realm (the bytes come from the parent's)
        const copy = new Uint8Array(m.byteLength);
        copy.set(m);
        data = this.binaryType === 'arraybuffer' ? copy.buffer : new Blob([copy]);
      }
      this.fire(new MessageEvent('message', { data }));
    }

    private closed(code: number, reason: string): void {
      if (this.readyState === 3 && code !== 1006) return;
      this.readyState = 3;
      this.fire(new CloseEvent('close', { code, reason, wasClean: code !== 1006 }));
    }

    send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (this.readyState === 0)
        throw new DOMException('WebSocket is still connecting', 'InvalidStateError');
      if (this.readyState !== 1) return;
      const go = (m: string | Uint8Array) =>
        this.sock ? void this.sock.send(m) : this.queue.push(m);
      if (typeof data === 'string') go(data);
      else if (data instanceof Blob) void data.arrayBuffer().then((b) => go(new Uint8Array(b)));
      else if (ArrayBuffer.isView(data))
        go(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
      else go(new Uint8Array(data as ArrayBuffer).slice());
    }

    close(code = 1000, reason = ''): void {
      if (this.readyState >= 2) return;
      this.readyState = 2;
      if (this.sock) this.sock.close(code, reason);
      else this.closed(code, reason);
    }
  }

  // Only sockets to this origin go through the tunnel; others stay native.
  const Patched = function (this: unknown, url: string | URL, protocols?: string | string[]) {
    const u = new URL(String(url), location.href);
    const sameHost = u.host === location.host && (u.protocol === 'ws:' || u.protocol === 'wss:');
    return sameHost ? new PeerwayWebSocket(url, protocols) : new NativeWebSocket(url, protocols);
  } as unknown as typeof WebSocket;
  Object.assign(Patched, {
    CONNECTING: 0,
    OPEN: 1,
    CLOSING: 2,
    CLOSED: 3,
    prototype: PeerwayWebSocket.prototype,
  });
  window.WebSocket = Patched;

  // fetch() to this origin goes to the shell directly: the parent window is
  // the same origin and the same thread, so the request skips the service
  // worker's two hops (fetch event, then a message to the shell and back),
  // which cost ~4 ms of a ~6 ms small GET (bench/README.md). Anything this
  // does not mirror exactly goes to the browser's fetch, and so through the
  // worker as before: other origins, Peerway's own paths, redirect "manual",
  // integrity, keepalive.
  const nativeFetch = window.fetch.bind(window);
  const takes = (r: Request, u: URL) =>
    u.origin === location.origin &&
    !u.pathname.startsWith('/__peerway/') &&
    u.pathname !== '/ws/client' &&
    r.redirect !== 'manual' &&
    !r.integrity &&
    !r.keepalive;
  window.fetch = async function fetch(input: RequestInfo | URL, init?: RequestInit) {
    let req = new Request(input, init);
    let url = new URL(req.url);
    if (!takes(req, url)) return nativeFetch(req);
    const signal = req.signal;
    const aborted = () =>
      signal.reason ?? new DOMException('The user aborted a request.', 'AbortError');
    let body: Blob | null = req.body ? await req.blob() : null;
    for (let hops = 0; ; hops++) {
      if (signal.aborted) throw aborted();
      const headers: [string, string][] = [];
      req.headers.forEach((v, k) => headers.push([k, v]));
      const res = await api.fetch(
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
      if (!res.ok) return new Response(res.message, { status: res.status, headers: TEXT });
      const to = header(res.headers, 'location');
      if (REDIRECT.has(res.status) && to !== undefined) {
        void res.body?.cancel().catch(() => {});
        if (req.redirect === 'error' || hops >= 20) throw new TypeError('Failed to fetch');
        // RFC 9110 §15.4 as fetch() does it: 303 (and 301/302 after POST) become a GET without a body
        const toGet =
          (res.status === 303 && req.method !== 'HEAD') ||
          ((res.status === 301 || res.status === 302) && req.method === 'POST');
        const next = new URL(to, url);
        const nextInit: RequestInit = {
          method: toGet ? 'GET' : req.method,
          headers: req.headers,
          body: toGet ? null : body,
          credentials: req.credentials,
          cache: req.cache,
          signal,
        };
        if (toGet) body = null;
        req = new Request(next, nextInit);
        url = next;
        if (!takes(req, url)) return nativeFetch(req);
        continue;
      }
      // as the worker builds its Response (sw.ts: a twin, since these classic
      // scripts cannot share a module)
      const h = new Headers();
      for (const [k, v] of res.headers) {
        try {
          h.append(k, v);
        } catch {
          // a header a Response may not carry is dropped (as the worker does)
        }
      }
      const nullBody = NULL_BODY.has(res.status) || req.method === 'HEAD';
      if (nullBody) void res.body?.cancel().catch(() => {});
      const out = new Response(nullBody ? null : res.body, {
        status: res.status,
        statusText: res.statusText,
        headers: h,
      });
      return dress(out, url.href, hops > 0);
    }
  } as typeof window.fetch;

  Object.defineProperty(document, 'cookie', {
    configurable: true,
    get: () => api.cookieGet(location.pathname),
    set: (v: string) => api.cookieSet(location.pathname, String(v)),
  });

  for (const m of ['pushState', 'replaceState'] as const) {
    const orig = history[m].bind(history);
    history[m] = (...args: Parameters<History['pushState']>) => {
      orig(...args);
      api.navigated();
    };
  }
  addEventListener('popstate', () => api.navigated());
  addEventListener('hashchange', () => api.navigated());
})();
