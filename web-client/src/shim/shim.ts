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
import { tunnelFetch } from './fetch';
import { tunnelWebSocketClass, tunnelsWebSocket } from './websocket';

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
  const PeerwayWebSocket = tunnelWebSocketClass(api, location);

  // Only sockets to this origin go through the tunnel; others stay native.
  const Patched = function (this: unknown, url: string | URL, protocols?: string | string[]) {
    return tunnelsWebSocket(url, location)
      ? new PeerwayWebSocket(url, protocols)
      : new NativeWebSocket(url, protocols);
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
  // the same origin and the same thread (./fetch says what it mirrors).
  window.fetch = tunnelFetch(api, window.fetch.bind(window), location.origin);

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
