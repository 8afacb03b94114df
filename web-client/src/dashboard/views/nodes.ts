/**
 * My nodes, live: each node with its status, load, resources (what it has,
 * what deployments hold of what it offers, its labels, who may deploy to
 * it), public listing toggle and removal; each service with its URL (copy),
 * who may open it (private, public, shared with named people) and the
 * people it is shared with.
 */
import { api, type Access, type NodeView, type ServiceView } from '../api';
import { announce, bytes, copyButton, h } from '../dom';
import { live, type Snapshot } from '../live';
import type { ViewContext } from '../router';
import { howToAddNode } from './howto';
import { nodeDeployers, nodeResources } from './node-resources';
import { status } from './public';

export function nodesView({ user, root }: ViewContext): (() => void) | void {
  if (!user) {
    root.append(
      h('h1', {}, 'Peerway'),
      h(
        'p',
        { class: 'lead' },
        'A stable URL for a web service behind your home router. Peer to peer, no port forwarding.',
      ),
      h(
        'p',
        {},
        h('a', { class: 'button', href: '/signin?next=/' }, 'Sign in'),
        ' ',
        h('a', { class: 'button secondary', href: '/signup?next=/' }, 'Create an account'),
      ),
      h('p', {}, h('a', { href: '/public' }, 'See the public nodes')),
    );
    return;
  }
  const list = h('div', { class: 'cards', id: 'nodes' }, h('p', {}, 'Loading…'));
  root.append(h('h1', {}, 'My nodes'), list, howToAddNode());
  let last = '';
  return live(false, (snap) => {
    const text = JSON.stringify([snap.nodes, snap.services]);
    if (text === last) return;
    last = text;
    // Keep what the user is typing and where the focus is across a refresh.
    const focused = document.activeElement?.id;
    const typed = new Map(
      [...list.querySelectorAll<HTMLInputElement>('input[type=email]')].map((i) => [i.id, i.value]),
    );
    list.replaceChildren(...renderNodes(snap));
    for (const [id, v] of typed) {
      const i = document.getElementById(id) as HTMLInputElement | null;
      if (i) i.value = v;
    }
    if (focused) document.getElementById(focused)?.focus();
  });
}

function renderNodes(snap: Snapshot): HTMLElement[] {
  if (snap.nodes.length === 0)
    return [
      h(
        'p',
        {},
        'No nodes yet. Add one with the steps below, or open the claim link an agent prints.',
      ),
    ];
  const services = new Map(snap.services.map((s) => [s.name, s]));
  return snap.nodes.map((n) => nodeCard(n, services));
}

function nodeCard(n: NodeView, services: Map<string, ServiceView>): HTMLElement {
  const toggleId = `public-${n.shortId}`;
  return h(
    'article',
    { class: 'card', 'data-node': n.shortId, 'aria-labelledby': `title-${n.shortId}` },
    h(
      'header',
      { class: 'card-head' },
      h(
        'h2',
        { id: `title-${n.shortId}` },
        n.name,
        ' ',
        h('span', { class: 'id', title: 'short ID' }, n.shortId),
      ),
      status(n.online, n.lastSeen),
    ),
    n.online && n.load ? loadLine(n.load) : null,
    nodeResources(n),
    h(
      'div',
      { class: 'row' },
      h(
        'label',
        { class: 'switch', for: toggleId },
        h('input', {
          type: 'checkbox',
          id: toggleId,
          role: 'switch',
          ...(n.isPublic ? { checked: true } : {}),
          onchange: async (e: Event) => {
            const el = e.target as HTMLInputElement;
            try {
              await api('PUT', `/api/nodes/${n.shortId}/visibility`, { isPublic: el.checked });
              announce(`${n.name} is ${el.checked ? 'listed on' : 'hidden from'} the public page`);
            } catch (err) {
              el.checked = !el.checked;
              announce((err as Error).message);
            }
          },
        }),
        ' Listed on the public page',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'small danger',
          onclick: async () => {
            if (
              !confirm(
                `Remove node ${n.name} (${n.shortId})? Its agent stops and its services go offline.`,
              )
            )
              return;
            try {
              await api('DELETE', `/api/nodes/${n.shortId}`);
              announce(`${n.name} removed`);
            } catch (err) {
              announce((err as Error).message);
            }
          },
        },
        'Remove node',
      ),
    ),
    n.services.length
      ? h(
          'ul',
          { class: 'services' },
          n.services.map((s) => serviceItem(n, s.name, services.get(s.name), s.url, s.access)),
        )
      : h(
          'p',
          { class: 'muted' },
          'This node announces no services yet (peerway-agent expose NAME TARGET).',
        ),
    n.deployers !== undefined ? nodeDeployers(n) : null,
  );
}

function loadLine(l: NonNullable<NodeView['load']>): HTMLElement {
  return h(
    'p',
    { class: 'load' },
    `${l.sessions} session${l.sessions === 1 ? '' : 's'} · CPU ${Math.round(l.cpu * 100)}% · ${bytes(l.rssBytes)} · ↑ ${bytes(Math.round(l.txBytesPerSec))}/s ↓ ${bytes(Math.round(l.rxBytesPerSec))}/s`,
  );
}

function serviceItem(
  n: NodeView,
  name: string,
  svc: ServiceView | undefined,
  url: string,
  access: Access,
): HTMLElement {
  const selectId = `access-${n.shortId}-${name}`;
  const mine = svc !== undefined; // a collaborator's replica: the owner decides access
  return h(
    'li',
    { class: 'service', 'data-service': name },
    h(
      'div',
      { class: 'row' },
      h('a', { href: url, class: 'url' }, url),
      copyButton(url, `Copy the URL of ${name}`),
    ),
    mine
      ? h(
          'div',
          { class: 'row' },
          h('label', { for: selectId }, 'Who may open it'),
          h(
            'select',
            {
              id: selectId,
              onchange: async (e: Event) => {
                const el = e.target as HTMLSelectElement;
                try {
                  await api('PUT', `/api/services/${name}/access`, { access: el.value });
                  announce(`${name} is now ${el.value}`);
                } catch (err) {
                  announce((err as Error).message);
                }
              },
            },
            (['private', 'public', 'shared'] as const).map((a) =>
              h(
                'option',
                { value: a, ...(a === access ? { selected: true } : {}) },
                a === 'private'
                  ? 'Only me'
                  : a === 'public'
                    ? 'Anyone with the URL'
                    : 'People I share it with',
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'A replica of a service whose owner lets this node serve it.'),
    mine && access === 'shared' ? people(n, name, svc.sharedWith, GRANTS.shares) : null,
    mine ? people(n, name, svc.servedBy ?? [], GRANTS.servers) : null,
  );
}

/** The two grants an owner gives other users: to open a service, and (apart) to serve it. */
const GRANTS = {
  shares: {
    path: 'shares',
    label: 'Share with',
    button: 'Share',
    done: 'shared with',
    none: 'Not shared with anyone yet.',
    title: null,
  },
  servers: {
    path: 'servers',
    label: 'Let their nodes serve it',
    button: 'Allow',
    done: 'may now be served by the nodes of',
    none: 'Only your own nodes serve it.',
    title:
      'Serving nodes receive its visitors and their access tokens: allow only people you trust. Sharing does not let anyone serve.',
  },
} as const;

function people(
  n: NodeView,
  name: string,
  emails: string[],
  g: (typeof GRANTS)[keyof typeof GRANTS],
): HTMLElement {
  const inputId = `${g.path}-${n.shortId}-${name}`;
  const form = h(
    'form',
    { class: 'row' },
    h('label', { for: inputId, ...(g.title ? { title: g.title } : {}) }, g.label),
    h('input', {
      id: inputId,
      type: 'email',
      placeholder: 'email of a Peerway user',
      required: true,
      autocomplete: 'off',
    }),
    h('button', { type: 'submit', class: 'small' }, g.button),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.querySelector('input')!;
    try {
      await api('POST', `/api/services/${name}/${g.path}`, { email: input.value });
      announce(`${name} ${g.done} ${input.value}`);
      input.value = '';
    } catch (err) {
      announce((err as Error).message);
    }
  });
  return h(
    'div',
    { class: g.path, 'data-grant': g.path },
    emails.length
      ? h(
          'ul',
          { class: 'plain' },
          emails.map((email) =>
            h(
              'li',
              {},
              email,
              ' ',
              h(
                'button',
                {
                  type: 'button',
                  class: 'small secondary',
                  'aria-label':
                    g.path === 'shares'
                      ? `Stop sharing ${name} with ${email}`
                      : `Stop letting the nodes of ${email} serve ${name}`,
                  onclick: async () => {
                    await api(
                      'DELETE',
                      `/api/services/${name}/${g.path}/${encodeURIComponent(email)}`,
                    ).catch((err: Error) => announce(err.message));
                  },
                },
                'Remove',
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, g.none),
    g.title ? h('p', { class: 'muted small' }, g.title) : null,
    form,
  );
}
