/**
 * The service access token for this page. Public services: asked for on this
 * origin (no cookies involved). Private services: the gateway's /authorize
 * checks who is signed in (on the gateway origin) and redirects back to
 * /__peerway/callback with the token in the fragment, keeping the deep link.
 * Tokens live minutes; with the first one /authorize hands over a renewal
 * credential (hours), which this origin's /__peerway/token takes for a fresh
 * token while the user still has the right, so a tab keeps going without a
 * trip through the gateway, and stops when the owner takes the right back.
 */
import { PeerwayError, sameOriginPath } from '@peerway/protocol';
import type { ShellConfig } from '../bridge';

const KEY = 'peerway:token';
/** The renewal credential from /authorize (kept for this tab only, like the token). */
const RENEW_KEY = 'peerway:renew';

function expiry(token: string): number {
  try {
    const payload = JSON.parse(
      atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')),
    ) as { exp?: number };
    return (payload.exp ?? 0) * 1000;
  } catch {
    return 0;
  }
}

/** The return path to come back to after sign-in. */
export function currentPath(): string {
  return location.pathname + location.search + location.hash;
}

/** Goes through the gateway's sign-in and authorization, back to `returnTo`. */
export function authorize(cfg: ShellConfig, returnTo = currentPath()): never {
  location.assign(
    `${cfg.gateway}/authorize?service=${encodeURIComponent(cfg.service)}&return=${encodeURIComponent(returnTo)}`,
  );
  throw new PeerwayError('unauthorized', 'redirecting to sign in');
}

/** Handles the return from /authorize; true when it navigated away. */
export function consumeCallback(): boolean {
  if (location.pathname !== '/__peerway/callback') return false;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  const renew = params.get('renew');
  if (token) sessionStorage.setItem(KEY, token);
  // None with this token (a public right): none kept from an earlier user either.
  if (renew) sessionStorage.setItem(RENEW_KEY, renew);
  else sessionStorage.removeItem(RENEW_KEY);
  // Read as the browser will, and only a path on this origin: never an open redirect.
  location.replace(sameOriginPath(params.get('return'), location.origin));
  return true;
}

/** A token valid for at least `minLifeMs`, or a redirect to sign in. */
export async function getToken(cfg: ShellConfig, minLifeMs = 30_000): Promise<string> {
  // the one the page came with, once
  if (cfg.token) {
    sessionStorage.setItem(KEY, cfg.token);
    delete cfg.token;
  }
  const saved = sessionStorage.getItem(KEY);
  if (saved && expiry(saved) - Date.now() > minLifeMs) return saved;
  // Near expiry: renew with the credential if there is one (the server checks
  // the right again), else ask as anyone (public services only).
  const renew = sessionStorage.getItem(RENEW_KEY);
  const res = await fetch(
    '/__peerway/token',
    renew
      ? {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ renew }),
        }
      : { method: 'POST' },
  );
  const body = (await res.json().catch(() => ({}))) as {
    token?: string;
    error?: { code: PeerwayError['code']; message: string };
  };
  if (res.ok && body.token) {
    sessionStorage.setItem(KEY, body.token);
    return body.token;
  }
  if (res.status === 401) {
    // The right is gone or the credential expired: /authorize says which.
    sessionStorage.removeItem(RENEW_KEY);
    authorize(cfg);
  }
  throw new PeerwayError(
    body.error?.code ?? 'internal',
    body.error?.message ?? `the server answered ${res.status}`,
  );
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
