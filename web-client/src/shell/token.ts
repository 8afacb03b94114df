/**
 * The service access token for this page. Public services: asked for on this
 * origin (no cookies involved). Private services: the gateway's /authorize
 * checks who is signed in (on the gateway origin) and redirects back to
 * /__peerway/callback with the token in the fragment, keeping the deep link.
 */
import { PeerwayError } from '@peerway/protocol';
import type { ShellConfig } from '../bridge';

const KEY = 'peerway:token';

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
  const ret = params.get('return') ?? '/';
  if (token) sessionStorage.setItem(KEY, token);
  // Only same-origin paths: never an open redirect.
  location.replace(ret.startsWith('/') && !ret.startsWith('//') ? ret : '/');
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
  const res = await fetch('/__peerway/token', { method: 'POST' });
  const body = (await res.json().catch(() => ({}))) as {
    token?: string;
    error?: { code: PeerwayError['code']; message: string };
  };
  if (res.ok && body.token) {
    sessionStorage.setItem(KEY, body.token);
    return body.token;
  }
  if (res.status === 401) authorize(cfg);
  throw new PeerwayError(
    body.error?.code ?? 'internal',
    body.error?.message ?? `the server answered ${res.status}`,
  );
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
