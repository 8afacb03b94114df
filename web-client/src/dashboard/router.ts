/**
 * The dashboard's router: the table of routes, which one answers a path
 * (with its parameters, `/deployments/:name`), the view on screen and
 * moving between views without a reload. Views import this module, never
 * main.ts: main.ts fills the table with the views, so nothing imports back.
 */
import type { Me } from './api';
import { h } from './dom';

/** What a view is given when it renders. */
export interface ViewContext {
  user: Me | null;
  root: HTMLElement;
  /** The path's parameters, e.g. `{ name }` for `/deployments/:name`. */
  params: Record<string, string>;
  navigate(path: string): void;
}

/** A view renders into `root` and returns its cleanup (timers, live updates), if any. */
export type View = (ctx: ViewContext) => (() => void) | void;

export interface Route {
  /** A path, or a pattern whose `:word` segments match one segment each. */
  path: string;
  title: string;
  view: View;
  /** The nav link that is current while this route shows (its href); the path itself by default. */
  nav?: string;
}

interface Match {
  route: Route;
  params: Record<string, string>;
}

let table: readonly Route[] = [];
let user: Me | null = null;
let cleanup: (() => void) | void;
let current: Match | null = null;

const notFound: Route = {
  path: '',
  title: 'Not found',
  view: ({ root }) =>
    void root.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back home'))),
};

/** Sets the routes (main.ts, once, before `start`). */
export function setRoutes(routes: readonly Route[]): void {
  table = routes;
}

/** The route that answers `pathname` and its parameters, or null. */
export function match(pathname: string): Match | null {
  const parts = pathname.split('/');
  for (const route of table) {
    const want = route.path.split('/');
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      const w = want[i]!;
      const p = parts[i]!;
      if (w.startsWith(':')) {
        let value: string;
        try {
          value = decodeURIComponent(p);
        } catch {
          value = '';
        }
        if (value) params[w.slice(1)] = value;
        else ok = false;
      } else ok = w === p;
    }
    if (ok) return { route, params };
  }
  return null;
}

/** The route on screen now (null before `start`). */
export function currentRoute(): Match | null {
  return current;
}

/** Renders the view for the address bar's path, after the previous view's cleanup. */
export function render(): void {
  cleanup?.();
  const root = document.getElementById('view')!;
  root.replaceChildren();
  current = match(location.pathname) ?? { route: notFound, params: {} };
  const { route, params } = current;
  document.title = `${route.title} · Peerway`;
  const nav = route.nav ?? route.path;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-nav]'))
    if (a.getAttribute('href') === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  cleanup = route.view({ user, root, params, navigate });
}

/** Shows `path` (a path with an optional query and fragment) without a reload. */
export function navigate(path: string): void {
  history.pushState(null, '', path);
  render();
  document.getElementById('view')?.focus();
}

/**
 * Starts routing for the signed-in user (or null): same-origin links to a
 * route switch views in the page, back and forward re-render.
 */
export function start(signedIn: Me | null): void {
  user = signedIn;
  document.addEventListener('click', (e) => {
    const a = (e.target as Element).closest?.('a');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !match(url.pathname) || a.target) return;
    // A link to a place on this page scrolls there, as the browser would.
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener('popstate', render);
  render();
}
