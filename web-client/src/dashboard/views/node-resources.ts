/**
 * A node card's cluster part: what the machine has (cores, memory, disk,
 * GPUs, OS/arch, container runtime), whether it takes deployments, its
 * labels, what Peerway's replicas hold of what it offers (bars), and for its
 * owner who else may deploy to it.
 */
import type { NodeView } from '../api';
import { api } from '../api';
import { announce, bytes, h } from '../dom';

/** "0.5", "2", "1.25": CPU from millicores, as a spec writes it. */
export function cores(millis: number): string {
  return String(Math.round(millis) / 1000);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Resources, deployments on/off, labels and allocation of one node. */
export function nodeResources(n: NodeView): HTMLElement {
  const r = n.resources;
  if (!r)
    return h(
      'div',
      { class: 'resources', 'data-resources': 'none' },
      h(
        'p',
        { class: 'muted' },
        'No resource report from this node yet (an agent reports its resources when it connects).',
      ),
    );
  const c = r.capacity;
  const runtime = n.runtime ?? c.runtime;
  const gpus = c.gpus.length
    ? `${plural(c.gpus.length, 'GPU')}: ${c.gpus.map((g) => `${g.model} (${bytes(g.memoryBytes)})`).join(', ')}`
    : 'no GPU';
  const caps = [
    r.offer.cpuCores !== null ? plural(r.offer.cpuCores, 'core') : null,
    r.offer.memoryBytes !== null ? bytes(r.offer.memoryBytes) : null,
  ].filter(Boolean);
  const labels = Object.entries(n.labels ?? r.labels);
  const takes = n.deployments ?? r.deployments;
  return h(
    'div',
    { class: 'resources', 'data-resources': 'reported' },
    h(
      'ul',
      { class: 'facts', 'aria-label': `What ${n.name} has` },
      h('li', { 'data-fact': 'cpu' }, plural(c.cpuCores, 'core')),
      h('li', { 'data-fact': 'memory' }, `${bytes(c.memoryBytes)} memory`),
      h('li', { 'data-fact': 'disk' }, `${bytes(c.diskFreeBytes)} disk free`),
      h('li', { 'data-fact': 'gpu' }, gpus),
      h('li', { 'data-fact': 'platform' }, `${c.os}/${c.arch}`),
      h(
        'li',
        { 'data-fact': 'runtime', class: runtime ? null : 'warn' },
        runtime ? `${runtime.name} ${runtime.version}` : 'no container runtime',
      ),
    ),
    h(
      'p',
      { 'data-fact': 'deployments', class: takes ? 'ok' : 'muted' },
      takes
        ? `Takes deployments${caps.length ? ` (its owner offers ${caps.join(' and ')})` : ''}.`
        : [
            'Deployments off: its agent runs nothing it is sent (start it with ',
            h('code', { class: 'cmd-inline' }, 'peerway-agent run --deployments'),
            ').',
          ],
    ),
    labels.length
      ? h(
          'ul',
          { class: 'labels', 'aria-label': 'Labels' },
          labels.map(([k, v]) => h('li', { class: 'label' }, `${k}=${v}`)),
        )
      : null,
    takes || (n.allocated && n.allocated.cpuMillis + n.allocated.memoryBytes > 0)
      ? allocation(n)
      : null,
  );
}

/** Used-of-offered bars for CPU, memory and (when it has them) GPUs. */
function allocation(n: NodeView): HTMLElement | null {
  const d = n.deployable;
  const a = n.allocated ?? { cpuMillis: 0, memoryBytes: 0, gpu: 0 };
  if (!d) return null;
  const rows = [
    bar(
      n.shortId,
      'CPU',
      a.cpuMillis,
      d.cpuMillis,
      `${cores(a.cpuMillis)} of ${cores(d.cpuMillis)} cores`,
    ),
    bar(
      n.shortId,
      'Memory',
      a.memoryBytes,
      d.memoryBytes,
      `${bytes(a.memoryBytes)} of ${bytes(d.memoryBytes)}`,
    ),
    d.gpu > 0 ? bar(n.shortId, 'GPU', a.gpu, d.gpu, `${a.gpu} of ${d.gpu}`) : null,
  ];
  return h(
    'div',
    { class: 'allocated', 'data-allocated': `${a.cpuMillis}/${d.cpuMillis}` },
    h('p', { class: 'muted small' }, 'Held by deployments, of what it offers:'),
    rows,
  );
}

function bar(node: string, what: string, used: number, of: number, text: string): HTMLElement {
  const id = `bar-${node}-${what.toLowerCase()}`;
  return h(
    'div',
    { class: 'bar', 'data-bar': what.toLowerCase() },
    h('label', { for: id }, what),
    h('meter', { id, min: 0, max: Math.max(of, 1), value: Math.min(used, of), high: of * 0.9 }),
    h('span', { class: 'bar-text' }, text),
  );
}

/** Who besides the owner may deploy to the node: a list with Remove, and a form to add one. */
export function nodeDeployers(n: NodeView): HTMLElement {
  const emails = n.deployers ?? [];
  const inputId = `deployers-${n.shortId}`;
  const form = h(
    'form',
    { class: 'row' },
    h('label', { for: inputId }, 'Let them deploy to it'),
    h('input', {
      id: inputId,
      type: 'email',
      placeholder: 'email of a Peerway user',
      required: true,
      autocomplete: 'off',
    }),
    h('button', { type: 'submit', class: 'small' }, 'Allow'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.querySelector('input')!;
    try {
      await api('POST', `/api/nodes/${n.shortId}/deployers`, { email: input.value });
      announce(`${input.value} may now deploy to ${n.name}`);
      input.value = '';
    } catch (err) {
      announce((err as Error).message);
    }
  });
  return h(
    'div',
    { class: 'deployers', 'data-grant': 'deployers' },
    h('h3', {}, 'Who may deploy to it'),
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
                  'aria-label': `Stop letting ${email} deploy to ${n.name}`,
                  onclick: async () => {
                    try {
                      await api(
                        'DELETE',
                        `/api/nodes/${n.shortId}/deployers/${encodeURIComponent(email)}`,
                      );
                      announce(`${email} may no longer deploy to ${n.name}`);
                    } catch (err) {
                      announce((err as Error).message);
                    }
                  },
                },
                'Remove',
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'Only you deploy to it.'),
    h(
      'p',
      { class: 'muted small' },
      'Their containers run on this machine (with the limits their specs set): allow only people you trust.',
    ),
    form,
  );
}
