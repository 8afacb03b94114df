/**
 * The dashboard on the gateway origin: my nodes (with their services,
 * access and load), public nodes, adding a node from a claim link, and the
 * admin view of signaling and TURN. Plain DOM, no framework: a handful of
 * views, each a function that renders into <main> and returns its cleanup.
 */
import './style.css';
import { api, me, type Me } from './api';
import { h } from './dom';
import { addNodeView } from './views/add-node';
import { adminView } from './views/admin';
import { nodesView } from './views/nodes';
import { publicView } from './views/public';
import { tokensView } from './views/tokens';

export interface DashConfig {
  publicUrl: string;
  baseDomain: string;
}

declare global {
  interface Window {
    __PEERWAY_DASH__?: DashConfig;
  }
}

export const config: DashConfig = window.__PEERWAY_DASH__ ?? {
  publicUrl: location.origin,
  baseDomain: location.hostname,
};

export interface ViewContext {
  user: Me | null;
  root: HTMLElement;
  navigate(path: string): void;
}

type View = (ctx: ViewContext) => (() => void) | void;

const routes: Record<string, { title: string; view: View }> = {
  '/': { title: 'My nodes', view: nodesView },
  '/nodes': { title: 'My nodes', view: nodesView },
  '/public': { title: 'Public nodes', view: publicView },
  '/tokens': { title: 'Access tokens', view: tokensView },
  '/admin': { title: 'Admin', view: adminView },
  '/add-node': { title: 'Add a node', view: addNodeView },
};

let user: Me | null = null;
let cleanup: (() => void) | void;

function render(): void {
  cleanup?.();
  const root = document.getElementById('view')!;
  root.replaceChildren();
  const route = routes[location.pathname] ?? {
    title: 'Not found',
    view: ({ root: r }: ViewContext) =>
      void r.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back home'))),
  };
  document.title = `${route.title} · Peerway`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-nav]'))
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  cleanup = route.view({ user, root, navigate });
}

function navigate(path: string): void {
  history.pushState(null, '', path);
  render();
  document.getElementById('view')?.focus();
}

function renderWho(): void {
  const who = document.getElementById('who')!;
  who.replaceChildren();
  (document.querySelector('nav a[data-admin]') as HTMLElement).hidden = !user?.isAdmin;
  if (!user) {
    const next = encodeURIComponent(location.pathname + location.hash);
    who.append(h('a', { href: `/signin?next=${next}`, class: 'button' }, 'Sign in'));
    return;
  }
  who.append(
    h('span', { class: 'email' }, user.email),
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        onclick: async () => {
          await api('POST', '/api/auth/logout').catch(() => {});
          location.assign('/');
        },
      },
      'Sign out',
    ),
  );
}

// Same-origin links inside the app switch views without a reload.
document.addEventListener('click', (e) => {
  const a = (e.target as Element).closest?.('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname in routes) || a.target) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener('popstate', render);

void (async () => {
  user = await me().catch(() => null);
  renderWho();
  render();
})();
