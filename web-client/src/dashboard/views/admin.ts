/**
 * The admin view, live: signaling on this instance (and the others' counts),
 * sessions, setup times, failures, message and error rates over the last
 * hour, how sessions connect (direct, or relayed over UDP/TCP), TURN health
 * (probe, and coturn's own figures when it reports to Redis), and nodes that
 * need a look.
 */
import type { AdminView } from '../api';
import { ago, bytes, h } from '../dom';
import { live } from '../live';
import type { ViewContext } from '../router';
import { barChart } from '../chart';

export function adminView({ user, root }: ViewContext): (() => void) | void {
  root.append(h('h1', {}, 'Admin'));
  if (!user) {
    root.append(
      h(
        'p',
        {},
        h('a', { href: '/signin?next=/admin' }, 'Sign in'),
        ' as an admin to see this page.',
      ),
    );
    return;
  }
  if (!user.isAdmin) {
    root.append(h('p', { role: 'alert' }, 'This page is for admins of this Peerway server.'));
    return;
  }
  const body = h('div', { id: 'admin' }, h('p', {}, 'Loading…'));
  root.append(body);
  return live(true, (snap) => {
    if (snap.admin) body.replaceChildren(...render(snap.admin));
  });
}

/** The columns of "Recent sessions" (each cell carries its name, shown when rows stack on a phone). */
const RECENT_COLUMNS = ['opened', 'service', 'node', 'setup', 'connection', 'result'];

const ms = (v: number | null) => (v === null ? '—' : `${Math.round(v)} ms`);
const pct = (v: number | null) => (v === null ? '—' : `${Math.round(v * 100)}%`);

function stat(label: string, value: string | number, id?: string): HTMLElement {
  return h(
    'div',
    { class: 'stat', ...(id ? { 'data-stat': id } : {}) },
    h('div', { class: 'value' }, String(value)),
    h('div', { class: 'label' }, label),
  );
}

function how(s: AdminView['recent'][number]): string {
  const st = s.client ?? s.agent;
  if (!st) return s.failure ? '—' : 'connecting';
  const relayed = st.localCandidateType === 'relay' || st.remoteCandidateType === 'relay';
  const path = relayed
    ? `relayed (${(s.client?.relayProtocol ?? st.protocol ?? '').toUpperCase()})`
    : `direct (${st.localCandidateType} ⇄ ${st.remoteCandidateType})`;
  // which of the node's WebRTC engines answered (its own report)
  const engine = s.agent?.engine;
  return engine ? `${path}, ${engine}` : path;
}

function render(a: AdminView): HTMLElement[] {
  const t = a.turn;
  const peers = a.instance.peers;
  return [
    h(
      'section',
      { 'aria-labelledby': 'sig-h' },
      h('h2', { id: 'sig-h' }, 'Signaling'),
      h(
        'div',
        { class: 'stats' },
        stat('agents connected', a.agentsConnected, 'agents'),
        stat('browsers and clients', a.clientsConnected, 'clients'),
        stat('live sessions', a.liveSessions, 'sessions'),
        stat('session setup, median', ms(a.setupMs.p50)),
        stat('session setup, p99', ms(a.setupMs.p99)),
        stat('server instances', a.instance.instances),
      ),
      peers.length
        ? h(
            'p',
            { class: 'muted' },
            `Other instances: ${peers.map((p) => `${p.id} (${p.agents ?? '?'} agents, ${p.clients ?? '?'} clients)`).join(', ')}. The figures below are this instance's.`,
          )
        : null,
      h(
        'div',
        { class: 'charts' },
        barChart('Sessions per minute', a.series.sessions),
        barChart('Failed sessions per minute', a.series.failures, '#b3261e'),
        barChart('Signaling messages per minute', a.series.messages, '#5b6b82'),
        barChart('Refused messages per minute', a.series.errors, '#b3261e'),
      ),
      Object.keys(a.failuresByReason).length
        ? h(
            'table',
            { class: 'stack' },
            h('caption', {}, 'Failed sessions by reason (recent)'),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, 'reason'),
                h('th', { scope: 'col' }, 'sessions'),
              ),
            ),
            h(
              'tbody',
              {},
              Object.entries(a.failuresByReason).map(([k, v]) =>
                h(
                  'tr',
                  {},
                  h('td', { 'data-label': 'reason' }, k),
                  h('td', { 'data-label': 'sessions' }, String(v)),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No failed sessions recently.'),
    ),
    h(
      'section',
      { 'aria-labelledby': 'turn-h' },
      h('h2', { id: 'turn-h' }, 'TURN relay'),
      h(
        'div',
        { class: 'stats' },
        stat('sessions relayed', pct(t.relayedShare), 'relayed'),
        stat('relayed over UDP / TCP', `${a.connections.relayUdp} / ${a.connections.relayTcp}`),
        stat('direct', a.connections.direct),
        stat('bytes relayed (peer reports)', bytes(t.relayedBytes)),
        t.coturn
          ? stat('active allocations (coturn)', t.coturn.activeAllocations, 'allocations')
          : null,
        t.coturn ? stat('relayed by coturn', bytes(t.coturn.relayedBytes)) : null,
      ),
      !t.configured
        ? h(
            'p',
            { class: 'muted' },
            'No TURN server is configured: sessions between two strict NATs cannot connect. See infra/turn/README.md.',
          )
        : t.coturn === null
          ? h(
              'p',
              { class: 'muted' },
              "coturn does not report to this server's Redis (redis-statsdb): allocation figures come from the probe and the peers' reports.",
            )
          : null,
      t.probes.length
        ? h(
            'ul',
            { class: 'plain probes' },
            t.probes.map((p) =>
              h(
                'li',
                { class: p.ok ? 'ok' : 'error' },
                `${p.ok ? '✓' : '✗'} ${p.url}: `,
                p.ok ? `allocation granted in ${p.rttMs} ms` : p.error,
                h('span', { class: 'muted' }, ` (checked ${ago(p.at)})`),
              ),
            ),
          )
        : null,
    ),
    h(
      'section',
      { 'aria-labelledby': 'alerts-h' },
      h('h2', { id: 'alerts-h' }, 'Nodes that need a look'),
      a.alerts.length
        ? h(
            'ul',
            { class: 'plain alerts' },
            a.alerts.map((x) =>
              h(
                'li',
                { class: `alert ${x.kind}` },
                h('strong', {}, `${x.name || 'node'} (${x.shortId})`),
                ` ${x.detail}, ${ago(x.since)}`,
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'All nodes healthy.'),
    ),
    h(
      'section',
      { 'aria-labelledby': 'recent-h' },
      h('h2', { id: 'recent-h' }, 'Recent sessions'),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { id: 'recent', class: 'stack' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              RECENT_COLUMNS.map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h(
            'tbody',
            {},
            a.recent.slice(0, 25).map((s) =>
              h(
                'tr',
                { 'data-session': s.id },
                [
                  ago(s.openedAt),
                  s.service,
                  s.node,
                  ms(s.setupMs),
                  how(s),
                  s.failure ?? (s.closedAt ? 'closed' : 'open'),
                ].map((v, i) => h('td', { 'data-label': RECENT_COLUMNS[i]! }, v)),
              ),
            ),
          ),
        ),
      ),
    ),
  ];
}
