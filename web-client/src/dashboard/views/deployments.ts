/**
 * Deployments, live: the list (name, URL, replicas running of desired, a
 * state in words) with the "New deployment" form, and one deployment's page
 * (its replicas with node, state, reason and since; why some fit nowhere;
 * recent events; Delete).
 */
import {
  ApiError,
  api,
  type DeploymentEventView,
  type DeploymentView,
  type ReplicaView,
} from '../api';
import { ago, announce, bytes, copyButton, h } from '../dom';
import { every } from '../live';
import type { ViewContext } from '../router';
import { deployForm, unplaced } from './deploy-form';
import { cores } from './node-resources';
import { specToYaml } from './spec-text';

/** How often a deployments page asks again. */
export const DEPLOYMENTS_POLL_MS = 2000;
/** Events a deployment's page lists (the newest). */
const EVENTS_SHOWN = 30;
/** How often "since" times ("2 min ago") are drawn again when nothing else changed. */
const SINCE_REDRAW_MS = 10_000;

const BAD_STATES = new Set(['unhealthy', 'exited', 'failed']);

function signInFirst(root: HTMLElement, next: string): void {
  root.append(
    h('h1', {}, 'Deployments'),
    h(
      'p',
      {},
      h('a', { href: `/signin?next=${encodeURIComponent(next)}` }, 'Sign in'),
      ' to deploy containers to your nodes.',
    ),
  );
}

/** Replicas meant to run (not those being stopped). */
const wanted = (d: DeploymentView) => d.replicas.filter((r) => r.desired !== 'stop');

/** "running", "pending", "2 starting, 1 running": what a deployment's replicas are doing. */
export function stateOf(d: DeploymentView): { text: string; tone: 'ok' | 'bad' | 'wait' } {
  const reps = wanted(d);
  const desired = d.desired ?? d.spec.replicas;
  const running = d.running ?? reps.filter((r) => r.state === 'running').length;
  if (running >= desired && desired > 0) return { text: 'running', tone: 'ok' };
  const counts = new Map<string, number>();
  for (const r of reps) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  if (counts.size === 0) return { text: desired === 0 ? 'scaled to 0' : 'pending', tone: 'wait' };
  const text = [...counts].map(([s, n]) => (counts.size === 1 ? s : `${n} ${s}`)).join(', ');
  const bad = reps.some((r) => BAD_STATES.has(r.state));
  return { text, tone: bad ? 'bad' : 'wait' };
}

function stateBadge(d: DeploymentView): HTMLElement {
  const s = stateOf(d);
  return h('span', { class: `state ${s.tone}`, 'data-state': s.text }, s.text);
}

const replicaCount = (d: DeploymentView) => `${d.running ?? 0}/${d.desired ?? d.spec.replicas}`;

/** `/deployments`: the caller's deployments and the form for a new one. */
export function deploymentsView({ user, root, navigate }: ViewContext): (() => void) | void {
  if (!user) return signInFirst(root, '/deployments');
  const list = h('div', { id: 'deployments' }, h('p', {}, 'Loading…'));
  root.append(
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Deployments'),
      h('a', { href: '#new', class: 'button secondary' }, 'New deployment'),
    ),
    list,
    deployForm((name) => navigate(`/deployments/${encodeURIComponent(name)}`)),
  );
  let last = '';
  return every(DEPLOYMENTS_POLL_MS, async () => {
    try {
      const { deployments } = await api<{ deployments: DeploymentView[] }>(
        'GET',
        '/api/deployments',
      );
      const text = JSON.stringify(deployments);
      if (text === last) return;
      last = text;
      list.replaceChildren(deploymentTable(deployments));
    } catch (e) {
      last = '';
      list.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  });
}

function deploymentTable(ds: DeploymentView[]): HTMLElement {
  if (ds.length === 0)
    return h(
      'p',
      { class: 'muted' },
      'No deployments yet. Write a spec below: Peerway places its replicas on your nodes that take deployments and gives it a URL.',
    );
  return h(
    'table',
    { class: 'stack deployments' },
    h('caption', { class: 'sr-only' }, 'Your deployments'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Name', 'URL', 'Replicas', 'State'].map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      ds.map((d) =>
        h(
          'tr',
          { 'data-deployment': d.name },
          h(
            'td',
            { 'data-label': 'Name' },
            h('a', { href: `/deployments/${encodeURIComponent(d.name)}` }, d.name),
          ),
          h(
            'td',
            { 'data-label': 'URL', class: 'wrap' },
            d.url ? h('a', { href: d.url, class: 'url' }, d.url) : '—',
          ),
          h(
            'td',
            { 'data-label': 'Replicas', 'data-replicas': replicaCount(d) },
            `${replicaCount(d)} running`,
          ),
          h('td', { 'data-label': 'State' }, stateBadge(d)),
        ),
      ),
    ),
  );
}

/** `/deployments/:name`: one deployment, live, with Delete. */
export function deploymentView({ user, root, params, navigate }: ViewContext): (() => void) | void {
  const name = params.name!;
  if (!user) return signInFirst(root, `/deployments/${encodeURIComponent(name)}`);
  document.title = `${name} · Deployments · Peerway`;
  const body = h('div', { id: 'deployment', 'data-deployment': name }, h('p', {}, 'Loading…'));
  const del = h(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        if (
          !confirm(
            `Delete the deployment ${name}? Its replicas stop on every node and its URL stops answering.`,
          )
        )
          return;
        del.disabled = true;
        try {
          await api('DELETE', `/api/deployments/${encodeURIComponent(name)}`);
          announce(`${name} deleted`);
          navigate('/deployments');
        } catch (err) {
          del.disabled = false;
          announce((err as Error).message);
          body.prepend(h('p', { class: 'error', role: 'alert' }, (err as Error).message));
        }
      },
    },
    'Delete',
  );
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '/deployments' }, '← Deployments')),
    h('div', { class: 'title-row' }, h('h1', {}, name), del),
    body,
  );
  let last = '';
  let edit: HTMLElement | null = null;
  return every(DEPLOYMENTS_POLL_MS, async () => {
    try {
      const d = await api<DeploymentView>('GET', `/api/deployments/${encodeURIComponent(name)}`);
      // The form to change it starts from the spec as it was when the page opened.
      edit ??= root.appendChild(
        deployForm((n) => navigate(`/deployments/${encodeURIComponent(n)}`), {
          title: 'Change it',
          initial: specToYaml(d.spec),
        }),
      );
      // Drawn again when it changed, and now and then for its "since" times.
      const text = JSON.stringify(d) + String(Math.floor(Date.now() / SINCE_REDRAW_MS));
      if (text === last) return;
      last = text;
      del.hidden = false;
      body.replaceChildren(...deploymentDetail(d));
    } catch (e) {
      last = '';
      if (e instanceof ApiError && e.status === 404) {
        del.hidden = true;
        body.replaceChildren(
          h('p', {}, `You have no deployment named ${name}.`),
          h('p', {}, h('a', { href: '/deployments' }, 'See your deployments')),
        );
      } else body.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  });
}

function deploymentDetail(d: DeploymentView): HTMLElement[] {
  const s = d.spec;
  return [
    d.url
      ? h(
          'div',
          { class: 'row' },
          h('a', { href: d.url, class: 'url' }, d.url),
          copyButton(d.url, `Copy the URL of ${d.name}`),
        )
      : h('span'),
    h(
      'p',
      { class: 'summary' },
      stateBadge(d),
      ' ',
      h('span', { 'data-replicas': replicaCount(d) }, `${replicaCount(d)} replicas running`),
    ),
    h(
      'ul',
      { class: 'facts', 'aria-label': 'Spec' },
      h('li', { class: 'wrap' }, s.image),
      h('li', {}, `port ${s.port}`),
      h('li', {}, `${cores(s.resources.cpuMillis)} CPU, ${bytes(s.resources.memoryBytes)} each`),
      s.resources.gpu ? h('li', {}, `${s.resources.gpu} GPU each`) : null,
      h('li', {}, s.placement),
      h('li', {}, s.access),
    ),
    d.pending && d.pending.replicas > 0 ? unplaced(d.pending) : h('span'),
    h(
      'section',
      { 'aria-labelledby': 'replicas-title' },
      h('h2', { id: 'replicas-title' }, 'Replicas'),
      replicaTable(d.replicas),
    ),
    h(
      'section',
      { 'aria-labelledby': 'events-title' },
      h('h2', { id: 'events-title' }, 'Recent events'),
      eventList(d.events ?? []),
    ),
  ];
}

function replicaTable(rs: ReplicaView[]): HTMLElement {
  if (rs.length === 0) return h('p', { class: 'muted' }, 'No replicas.');
  return h(
    'table',
    { class: 'stack replicas' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Replica', 'Node', 'State', 'Reason', 'Since'].map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      rs.map((r) =>
        h(
          'tr',
          {
            'data-replica': r.id ?? 'unplaced',
            'data-state': r.state,
            ...(r.desired === 'stop' ? { class: 'stopping' } : {}),
          },
          h('td', { 'data-label': 'Replica' }, h('code', {}, r.id ?? '—')),
          h('td', { 'data-label': 'Node' }, r.node ? h('code', { class: 'id' }, r.node) : '—'),
          h(
            'td',
            { 'data-label': 'State' },
            h(
              'span',
              {
                class: `state ${r.state === 'running' ? 'ok' : BAD_STATES.has(r.state) ? 'bad' : 'wait'}`,
              },
              r.state,
            ),
            r.desired === 'stop' ? ' (stopping)' : '',
          ),
          h('td', { 'data-label': 'Reason', class: 'wrap' }, r.reason ?? ''),
          h(
            'td',
            { 'data-label': 'Since' },
            h('time', { datetime: new Date(r.since).toISOString() }, ago(r.since)),
          ),
        ),
      ),
    ),
  );
}

function eventList(events: DeploymentEventView[]): HTMLElement {
  if (events.length === 0) return h('p', { class: 'muted' }, 'No events yet.');
  // Newest first; the API sends them oldest first.
  const shown = events.slice(-EVENTS_SHOWN).reverse();
  return h(
    'ol',
    { class: 'plain events' },
    shown.map((e) =>
      h(
        'li',
        { 'data-event': e.kind },
        h(
          'time',
          { datetime: new Date(e.at).toISOString(), class: 'muted' },
          new Date(e.at).toLocaleTimeString(),
        ),
        ' ',
        e.message,
      ),
    ),
  );
}
