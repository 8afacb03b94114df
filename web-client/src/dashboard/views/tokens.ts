/**
 * Personal access tokens: the ones an agent or a script signs in with. Each
 * is listed with when it was made, last used and when it expires, and can be
 * revoked; a new one is shown once, with an expiry if the user picks one.
 */
import { api } from '../api';
import { ago, announce, commandLine, h } from '../dom';
import type { ViewContext } from '../router';

interface TokenView {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
}

/** Expiry choices, in days (0: never). */
const EXPIRY_DAYS = [30, 90, 365, 0] as const;

export function tokensView({ user, root }: ViewContext): void {
  if (!user) {
    root.append(
      h('h1', {}, 'Access tokens'),
      h('p', {}, h('a', { href: '/signin?next=%2Ftokens' }, 'Sign in'), ' to see your tokens.'),
    );
    return;
  }
  const list = h('div', { 'aria-live': 'polite' }, h('p', {}, 'Loading…'));
  const shown = h('div', { class: 'cmds' });
  const name = h('input', {
    id: 'token-name',
    required: true,
    maxlength: 64,
    value: 'agent',
    autocomplete: 'off',
  });
  const expiry = h(
    'select',
    { id: 'token-expiry' },
    EXPIRY_DAYS.map((d) => h('option', { value: String(d) }, d === 0 ? 'Never' : `In ${d} days`)),
  );
  const form = h(
    'form',
    { class: 'row', 'aria-label': 'Create a token' },
    h('label', { for: 'token-name' }, 'Name'),
    name,
    h('label', { for: 'token-expiry' }, 'Expires'),
    expiry,
    h('button', { type: 'submit' }, 'Create token'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const days = Number(expiry.value);
    try {
      const t = await api<{ token: string }>('POST', '/api/tokens', {
        name: name.value,
        ...(days ? { expiresInDays: days } : {}),
      });
      shown.replaceChildren(
        h('p', {}, 'Copy it now: it is shown only once.'),
        commandLine(t.token, 'Copy the token'),
      );
      announce(`token ${name.value} created`);
      void load();
    } catch (err) {
      announce((err as Error).message);
    }
  });

  const load = async () => {
    try {
      const { tokens } = await api<{ tokens: TokenView[] }>('GET', '/api/tokens');
      const now = Date.now();
      list.replaceChildren(
        tokens.length === 0
          ? h('p', { class: 'muted' }, 'No tokens yet.')
          : h(
              'table',
              { class: 'stack' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Name', 'Created', 'Last used', 'Expires', ''].map((c) => h('th', {}, c)),
                ),
              ),
              h(
                'tbody',
                {},
                tokens.map((t) =>
                  h(
                    'tr',
                    { 'data-token': t.id },
                    h('td', { 'data-label': 'Name' }, t.name),
                    h('td', { 'data-label': 'Created' }, ago(t.createdAt, now)),
                    h(
                      'td',
                      { 'data-label': 'Last used' },
                      t.lastUsedAt ? ago(t.lastUsedAt, now) : 'never',
                    ),
                    h(
                      'td',
                      { 'data-label': 'Expires' },
                      t.expiresAt === null
                        ? 'never'
                        : t.expiresAt <= now
                          ? 'expired'
                          : new Date(t.expiresAt).toLocaleDateString(),
                    ),
                    h(
                      'td',
                      {},
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'small secondary',
                          'aria-label': `Revoke token ${t.name}`,
                          onclick: async () => {
                            try {
                              await api('DELETE', `/api/tokens/${encodeURIComponent(t.id)}`);
                              announce(`token ${t.name} revoked`);
                              void load();
                            } catch (err) {
                              announce((err as Error).message);
                            }
                          },
                        },
                        'Revoke',
                      ),
                    ),
                  ),
                ),
              ),
            ),
      );
    } catch (e) {
      list.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  };
  root.append(
    h('h1', {}, 'Access tokens'),
    h(
      'p',
      { class: 'muted' },
      'Agents (peerway-agent login) and scripts sign in with these. Revoke one you no longer use: it stops working at once.',
    ),
    list,
    h('h2', {}, 'New token'),
    form,
    shown,
  );
  void load();
}
