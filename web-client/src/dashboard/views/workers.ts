/**
 * `/workers`: the workers whose jobs the caller may run on (their own
 * nodes started with `peerway-agent run --jobs`, and nodes shared with them
 * for jobs or in the public pool) with their capabilities, the jobs they
 * hold now and their pool; and for each of the caller's own nodes, who
 * else's jobs it runs (job grants: users by email, or the public pool).
 */
import type { WorkerView } from '@peerway/protocol';
import { api, type NodeView } from '../api';
import { announce, bytes, h } from '../dom';
import { every } from '../live';
import type { ViewContext } from '../router';

/** How often the workers page asks again. */
export const WORKERS_POLL_MS = 3000;

/** A node's job grants as `GET /api/nodes/:id/job-grants` answers them. */
export interface JobGrantsView {
  node: string;
  public: boolean;
  users: string[];
}

const POOL_TEXT: Record<WorkerView['pool'], string> = {
  owner: 'its owner’s jobs only',
  shared: 'its owner’s and shared users’ jobs',
  public: 'everyone’s jobs (public pool)',
};

/** One connector in a few words: `http: services blog, api`. */
export function connectorText(c: WorkerView['connectors'][number]): string {
  const lists = [
    c.services.length ? `services ${c.services.join(', ')}` : '',
    c.models.length ? `models ${c.models.join(', ')}` : '',
    c.images.length ? `images ${c.images.join(', ')}` : '',
  ].filter(Boolean);
  return lists.length ? `${c.type}: ${lists.join('; ')}` : c.type;
}

function workerTable(ws: WorkerView[]): HTMLElement {
  if (ws.length === 0)
    return h(
      'p',
      { class: 'muted' },
      'No workers online. Start one on a node: ',
      h('code', {}, 'peerway-agent run --jobs --connector simulation'),
      '.',
    );
  return h(
    'table',
    { class: 'stack workers' },
    h('caption', { class: 'sr-only' }, 'Workers'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Node', 'Busy', 'Connectors', 'Resources', 'Labels', 'Jobs now', 'Runs'].map((c) =>
          h('th', { scope: 'col' }, c),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      ws.map((w) =>
        h(
          'tr',
          { 'data-worker': w.node },
          h(
            'td',
            { 'data-label': 'Node' },
            h('code', { class: 'id' }, w.node),
            ` ${w.name}`,
            w.online ? '' : h('span', { class: 'state bad' }, 'offline'),
          ),
          h(
            'td',
            { 'data-label': 'Busy', 'data-busy': `${w.running}/${w.concurrency}` },
            `${w.running}/${w.concurrency}`,
          ),
          h(
            'td',
            { 'data-label': 'Connectors', class: 'wrap' },
            h(
              'ul',
              { class: 'plain' },
              w.connectors.map((c) => h('li', {}, connectorText(c))),
            ),
          ),
          h(
            'td',
            { 'data-label': 'Resources' },
            `${bytes(w.memoryBytes)}${w.gpus ? `, ${w.gpus} GPU${w.gpus > 1 ? 's' : ''}` : ''}`,
          ),
          h(
            'td',
            { 'data-label': 'Labels', class: 'wrap' },
            Object.entries(w.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ') || '—',
          ),
          h(
            'td',
            { 'data-label': 'Jobs now' },
            w.jobs.length
              ? w.jobs.map((id) =>
                  h('a', { href: `/jobs/${encodeURIComponent(id)}` }, h('code', {}, id), ' '),
                )
              : '—',
          ),
          h('td', { 'data-label': 'Runs' }, POOL_TEXT[w.pool]),
        ),
      ),
    ),
  );
}

/**
 * The job-grants control of one of the caller's nodes: the public pool on
 * or off, the users whose jobs it runs, adding one by email, removing one.
 */
export function jobGrantsControl(node: { id: string; shortId: string; name: string }): HTMLElement {
  const path = `/api/nodes/${encodeURIComponent(node.id)}/job-grants`;
  const box = h('div', { class: 'job-grants', 'data-grants': node.shortId });
  const status = h('p', { class: 'muted', role: 'status' });
  const draw = (g: JobGrantsView) => {
    const pool = h('input', {
      type: 'checkbox',
      id: `pool-${node.shortId}`,
      ...(g.public ? { checked: true } : {}),
    });
    pool.addEventListener('change', () =>
      change(
        pool.checked ? 'POST' : 'DELETE',
        { public: true },
        pool.checked ? 'in the public pool' : 'out of the public pool',
      ),
    );
    const email = h('input', {
      type: 'email',
      id: `grant-${node.shortId}`,
      placeholder: 'user@example.com',
      required: true,
    });
    const add = h(
      'form',
      { class: 'row', 'aria-label': `Let a user’s jobs run on ${node.name}` },
      h('label', { for: `grant-${node.shortId}` }, 'Add a user'),
      email,
      h('button', { type: 'submit', class: 'small' }, 'Add'),
    );
    add.addEventListener('submit', (e) => {
      e.preventDefault();
      void change('POST', { email: email.value.trim() }, `runs ${email.value.trim()}’s jobs`);
    });
    box.replaceChildren(
      h('h3', {}, h('code', { class: 'id' }, node.shortId), ` ${node.name}`),
      h(
        'p',
        {},
        pool,
        ' ',
        h('label', { for: `pool-${node.shortId}` }, 'Public pool: run anyone’s jobs'),
      ),
      g.users.length
        ? h(
            'ul',
            { class: 'plain', 'aria-label': `Users whose jobs ${node.name} runs` },
            g.users.map((u) =>
              h(
                'li',
                { 'data-user': u },
                u,
                ' ',
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'small secondary',
                    'aria-label': `Stop running ${u}’s jobs on ${node.name}`,
                    onclick: () =>
                      void change('DELETE', { email: u }, `no longer runs ${u}’s jobs`),
                  },
                  'Remove',
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No other users’ jobs.'),
      add,
      status,
    );
  };
  const change = async (method: 'POST' | 'DELETE', body: unknown, says: string) => {
    try {
      draw(await api<JobGrantsView>(method, path, body));
      status.textContent = `${node.name} ${says}`;
      announce(status.textContent);
    } catch (e) {
      status.textContent = (e as Error).message;
      status.className = 'error';
      announce((e as Error).message);
    }
  };
  box.append(h('p', {}, 'Loading…'));
  void api<JobGrantsView>('GET', path).then(draw, (e: Error) =>
    box.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message)),
  );
  return box;
}

/** `/workers`: workers and the caller's job grants. */
export function workersView({ user, root }: ViewContext): (() => void) | void {
  if (!user) {
    root.append(
      h('h1', {}, 'Workers'),
      h('p', {}, h('a', { href: '/signin?next=%2Fworkers' }, 'Sign in'), ' to see your workers.'),
    );
    return;
  }
  const list = h('div', { id: 'workers' }, h('p', {}, 'Loading…'));
  const grants = h('div', { id: 'job-grants' });
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '/jobs' }, '← Jobs')),
    h('h1', {}, 'Workers'),
    list,
    h(
      'section',
      { 'aria-labelledby': 'grants-title' },
      h('h2', { id: 'grants-title' }, 'Whose jobs your nodes run'),
      h(
        'p',
        { class: 'muted' },
        'Your nodes run your own jobs. Let other users’ jobs run on one, or put it in the public pool. A node runs jobs only when started with --jobs, and only with the connectors you set up.',
      ),
      grants,
    ),
  );
  // the grant controls are drawn once per node (they keep their own state)
  const drawn = new Set<string>();
  let last = '';
  return every(WORKERS_POLL_MS, async () => {
    try {
      const [{ workers }, { nodes }] = await Promise.all([
        api<{ workers: WorkerView[] }>('GET', '/api/workers'),
        api<{ nodes: NodeView[] }>('GET', '/api/nodes'),
      ]);
      const text = JSON.stringify(workers);
      if (text !== last) {
        last = text;
        list.replaceChildren(workerTable(workers));
      }
      if (nodes.length === 0 && drawn.size === 0)
        grants.replaceChildren(h('p', { class: 'muted' }, 'You have no nodes.'));
      for (const n of nodes) {
        if (drawn.has(n.id)) continue;
        if (drawn.size === 0) grants.replaceChildren();
        drawn.add(n.id);
        grants.append(jobGrantsControl(n));
      }
    } catch (e) {
      last = '';
      list.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  });
}
