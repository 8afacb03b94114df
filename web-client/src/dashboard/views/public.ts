/** Public nodes: what owners chose to list, with their public services. */
import { api } from '../api';
import { ago, h } from '../dom';
import type { ViewContext } from '../router';

interface PublicNode {
  shortId: string;
  name: string;
  online: boolean;
  lastSeen: number;
  services: { name: string; url: string }[];
}

export function publicView({ root }: ViewContext): () => void {
  const list = h('div', { class: 'cards', 'aria-live': 'polite' }, h('p', {}, 'Loading…'));
  root.append(
    h('h1', {}, 'Public nodes'),
    h(
      'p',
      { class: 'muted' },
      'Nodes their owners listed publicly, and the services anyone may open.',
    ),
    list,
  );
  const load = async () => {
    try {
      const { nodes } = await api<{ nodes: PublicNode[] }>('GET', '/api/nodes/public');
      list.replaceChildren(
        ...(nodes.length === 0 ? [h('p', {}, 'No public nodes yet.')] : []),
        ...nodes.map((n) =>
          h(
            'article',
            { class: 'card', 'data-node': n.shortId },
            h(
              'h2',
              {},
              n.name,
              ' ',
              h('span', { class: 'id' }, n.shortId),
              ' ',
              status(n.online, n.lastSeen),
            ),
            n.services.length
              ? h(
                  'ul',
                  { class: 'plain' },
                  n.services.map((s) => h('li', {}, h('a', { href: s.url }, s.url))),
                )
              : h('p', { class: 'muted' }, 'No public services.'),
          ),
        ),
      );
    } catch (e) {
      list.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  };
  void load();
  const t = setInterval(() => void load(), 5000);
  return () => clearInterval(t);
}

export function status(online: boolean, lastSeen: number): HTMLElement {
  return h(
    'span',
    { class: `status ${online ? 'on' : 'off'}`, 'data-status': online ? 'online' : 'offline' },
    online ? 'online' : `offline · last seen ${ago(lastSeen)}`,
  );
}
