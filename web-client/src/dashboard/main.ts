/**
 * The dashboard on the gateway origin: my nodes (with their services,
 * access, load and resources), deployments, jobs and workers, public nodes,
 * adding a node from a claim link, tokens and the admin view of signaling and TURN.
 * Plain DOM, no framework: a handful of views, each a function that renders
 * into <main> and returns its cleanup. This module fills the router's table
 * and draws the header; views import the router, never this module.
 */
import './style.css';
import { api, me, type Me } from './api';
import { h } from './dom';
import { setRoutes, start } from './router';
import { addNodeView } from './views/add-node';
import { adminView } from './views/admin';
import { deploymentView, deploymentsView } from './views/deployments';
import { jobView, jobsView } from './views/jobs';
import { nodesView } from './views/nodes';
import { publicView } from './views/public';
import { tokensView } from './views/tokens';
import { workersView } from './views/workers';

setRoutes([
  { path: '/', title: 'My nodes', view: nodesView },
  { path: '/nodes', title: 'My nodes', view: nodesView, nav: '/' },
  { path: '/deployments', title: 'Deployments', view: deploymentsView },
  {
    path: '/deployments/:name',
    title: 'Deployment',
    view: deploymentView,
    nav: '/deployments',
  },
  { path: '/jobs', title: 'Jobs', view: jobsView },
  { path: '/jobs/:id', title: 'Job', view: jobView, nav: '/jobs' },
  { path: '/workers', title: 'Workers', view: workersView, nav: '/jobs' },
  { path: '/public', title: 'Public nodes', view: publicView },
  { path: '/tokens', title: 'Access tokens', view: tokensView },
  { path: '/admin', title: 'Admin', view: adminView },
  { path: '/add-node', title: 'Add a node', view: addNodeView },
]);

function renderWho(user: Me | null): void {
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

void (async () => {
  const user = await me().catch(() => null);
  renderWho(user);
  start(user);
})();
