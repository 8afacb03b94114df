/**
 * The few HTTP API calls the agent CLI makes (`login`, `status`): is this
 * access token good there, claim this node with it, is the node claimed,
 * where are its services. Every answer is a value, never a throw: the CLI
 * turns each into words.
 */
import { PeerwayError } from '@peerway/protocol';
import { describeConnectError } from './upstream-health';

/** How long one API call may take, in ms. */
export const API_TIMEOUT_MS = 5000;

/**
 * The form of an access token the agent can log in with: a personal access
 * token as the server makes them (`pwt_<id hex>_<secret base64url>`, see
 * signaling-server's Auth.createAccessToken), or a JWT of the server's
 * external identity provider (three base64url parts).
 */
const PERSONAL_TOKEN_RE = /^pwt_[0-9a-f]{6,64}_[A-Za-z0-9_-]{16,256}$/;
const JWT_RE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$/;

/** Throws, in words, unless `token` has the form of an access token. */
export function checkTokenForm(token: string): void {
  if (PERSONAL_TOKEN_RE.test(token) || (token.length <= 4096 && JWT_RE.test(token))) return;
  const shown = token.length > 24 ? `${token.slice(0, 12)}…` : token;
  throw new PeerwayError(
    'bad_request',
    `"${shown}" is not an access token: they look like pwt_1a2b3c4d5e6f_… ` +
      '(make one on the dashboard, where adding a node shows the command with it, ' +
      'or with `peerway-server tokens create --email E`)',
  );
}

type Reply = { status: number; json: unknown } | { unreachable: string };

async function call(
  server: string,
  method: 'GET' | 'POST',
  path: string,
  token?: string,
  body?: unknown,
): Promise<Reply> {
  try {
    const r = await fetch(new URL(path, server), {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const json: unknown = await r.json().catch(() => null);
    return { status: r.status, json };
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    if ((err as Error).name === 'TimeoutError') return { unreachable: 'timed out' };
    return { unreachable: describeConnectError(cause?.code, (err as Error).message) };
  }
}

const errorMessage = (json: unknown): string =>
  (json as { error?: { message?: string } } | null)?.error?.message ?? 'no reason given';

export type WhoAmI =
  | { ok: true; email: string }
  | { ok: false; rejected: string }
  | { ok: false; unreachable: string };

/** Asks the server whose token this is. */
export async function whoAmI(server: string, token: string): Promise<WhoAmI> {
  const r = await call(server, 'GET', '/api/me', token);
  if ('unreachable' in r) return { ok: false, unreachable: r.unreachable };
  if (r.status === 200) {
    const email = (r.json as { user?: { email?: string } } | null)?.user?.email;
    return { ok: true, email: email ?? '(unknown)' };
  }
  if (r.status === 401)
    return {
      ok: false,
      rejected: 'the server does not know it (revoked, expired, or from another server)',
    };
  return {
    ok: false,
    unreachable: `the server answered HTTP ${r.status}: ${errorMessage(r.json)}`,
  };
}

export type ClaimResult =
  | { ok: true; alreadyYours: boolean }
  | { ok: false; refused: string }
  | { ok: false; unreachable: string };

/** Claims the node a claim token names for the token's account. */
export async function claimNode(
  server: string,
  token: string,
  claimToken: string,
): Promise<ClaimResult> {
  const r = await call(server, 'POST', '/api/nodes/claim', token, { claimToken });
  if ('unreachable' in r) return { ok: false, unreachable: r.unreachable };
  if (r.status === 200) return { ok: true, alreadyYours: false };
  const message = errorMessage(r.json);
  if (r.status === 409 && /yours already/.test(message)) return { ok: true, alreadyYours: true };
  return { ok: false, refused: message };
}

/** Whether the node a claim token names is claimed (null: unreachable or refused). */
export async function claimInfo(
  server: string,
  claimToken: string,
): Promise<{ claimed: boolean } | null> {
  const r = await call(
    server,
    'GET',
    `/api/nodes/claim-info?token=${encodeURIComponent(claimToken)}`,
  );
  if ('unreachable' in r || r.status !== 200) return null;
  return { claimed: Boolean((r.json as { claimed?: boolean } | null)?.claimed) };
}

export interface NodeView {
  id: string;
  online: boolean;
  services: { name: string; url: string }[];
}

/** The token's account's nodes (null: unreachable or refused). */
export async function myNodes(server: string, token: string): Promise<NodeView[] | null> {
  const r = await call(server, 'GET', '/api/nodes', token);
  if ('unreachable' in r || r.status !== 200) return null;
  return (r.json as { nodes?: NodeView[] } | null)?.nodes ?? null;
}
