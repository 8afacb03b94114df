/**
 * Adding a node from the claim link its agent printed
 * (`/add-node#claim=<token>`, or the short `/c/<code>` that leads here).
 * Signed out: the claim waits in sessionStorage while the user signs in or
 * signs up, and this page picks it up again on the way back. A dialog names
 * the node and its short ID before anything is claimed.
 */
import { ApiError, api } from '../api';
import { announce, h } from '../dom';
import type { ViewContext } from '../router';
import { howToAddNode } from './howto';

export const PENDING_CLAIM_KEY = 'peerway:claim';

interface ClaimInfo {
  name: string;
  shortId: string;
  expiresAt: number;
  claimed: boolean;
  /** What the link can still do (see signaling-server/src/nodes/claims.ts). */
  state?: 'open' | 'claimed' | 'used' | 'revoked';
}

export function addNodeView({ user, root, navigate }: ViewContext): void {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('claim');
  if (fromLink) {
    sessionStorage.setItem(PENDING_CLAIM_KEY, fromLink);
    // Not in the address bar (or history) any longer than needed.
    history.replaceState(null, '', '/add-node');
  }
  const token = fromLink ?? sessionStorage.getItem(PENDING_CLAIM_KEY);
  const out = h('div', { class: 'card', id: 'claim', 'aria-live': 'polite' });
  root.append(h('h1', {}, 'Add a node'), out, howToAddNode(!token));
  if (!token) {
    out.append(
      h(
        'p',
        {},
        'No claim link here. Open the link your agent printed, or run ',
        h('code', {}, 'peerway-agent claim-url'),
        ' on the node.',
      ),
    );
    return;
  }
  if (!user) {
    out.append(
      h('p', {}, 'Sign in (or create an account) to add this node. You will come back here.'),
      h(
        'p',
        {},
        h('a', { class: 'button', href: '/signin?next=/add-node' }, 'Sign in'),
        ' ',
        h('a', { class: 'button secondary', href: '/signup?next=/add-node' }, 'Create an account'),
      ),
    );
    return;
  }
  const done = (message: string, ok: boolean) => {
    sessionStorage.removeItem(PENDING_CLAIM_KEY);
    out.replaceChildren(
      h('p', { class: ok ? 'ok' : 'error', role: ok ? 'status' : 'alert' }, message),
      h('p', {}, h('a', { href: '/' }, 'Go to my nodes')),
    );
    announce(message);
  };
  void (async () => {
    let info: ClaimInfo;
    try {
      info = await api<ClaimInfo>(
        'GET',
        `/api/nodes/claim-info?token=${encodeURIComponent(token)}`,
      );
    } catch (e) {
      const code = e instanceof ApiError ? e.code : '';
      return done(
        code === 'expired'
          ? 'This claim link has expired. Run `peerway-agent claim-url` on the node for a fresh one.'
          : code === 'invalid_signature' || code === 'bad_request'
            ? 'This claim link is not valid (it was changed or cut short). Copy the whole link the agent printed.'
            : (e as Error).message,
        false,
      );
    }
    if (info.state === 'used' || info.state === 'revoked')
      return done(
        info.state === 'used'
          ? 'This claim link was used already. Run `peerway-agent claim-url` on the node for a fresh one.'
          : 'This claim link is from before the node was removed. Start the agent again for a fresh one.',
        false,
      );
    if (info.claimed) {
      // Already yours is fine; someone else's is said plainly.
      const mine = await api<{ nodes: { shortId: string }[] }>('GET', '/api/nodes')
        .then((r) => r.nodes.some((n) => n.shortId === info.shortId))
        .catch(() => false);
      return done(
        mine
          ? `Node “${info.name}” (${info.shortId}) is already yours.`
          : `Node “${info.name}” (${info.shortId}) is already claimed by another account.`,
        mine,
      );
    }
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'claim-title' },
      h('h2', { id: 'claim-title' }, 'Claim this node?'),
      h(
        'p',
        {},
        'Add node ',
        h('strong', { 'data-name': '' }, `“${info.name}”`),
        ' (short ID ',
        h('code', { 'data-short': '' }, info.shortId),
        ') to your account ',
        h('strong', {}, user.email),
        '?',
      ),
      h(
        'p',
        { class: 'muted' },
        'Check the short ID against what the agent printed: whoever claims a node decides what it may serve.',
      ),
      h(
        'form',
        { method: 'dialog', class: 'row' },
        h('button', { value: 'claim', type: 'submit' }, `Claim ${info.shortId}`),
        h('button', { value: 'cancel', type: 'submit', class: 'secondary' }, 'Cancel'),
      ),
    );
    out.replaceChildren(
      h('p', {}, `Node “${info.name}” (${info.shortId}) wants to join your account.`),
      dialog,
    );
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'claim') {
        out.replaceChildren(
          h('p', {}, 'Not claimed.'),
          h('button', { type: 'button', onclick: () => navigate('/add-node') }, 'Review again'),
        );
        return;
      }
      try {
        const r = await api<{ node: { shortId: string; name: string } }>(
          'POST',
          '/api/nodes/claim',
          { claimToken: token },
        );
        done(
          `Node “${r.node.name}” (${r.node.shortId}) is yours. Its services are reachable now.`,
          true,
        );
      } catch (e) {
        done((e as Error).message, false);
      }
    });
    dialog.showModal();
  })();
}
