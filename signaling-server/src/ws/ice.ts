/**
 * ICE servers handed to both peers of a session: our own STUN and TURN from
 * config, never a public default. TURN credentials follow the TURN REST API
 * (coturn `use-auth-secret`): username `<expiry-unix-s>:<sessionId>`,
 * credential base64(HMAC-SHA1(secret, username)).
 *
 * werift uses only the first `stun:` and the first `turn:` URL it is given,
 * so URLs are ordered most generally useful first: TURN over UDP, then TCP,
 * then TLS (as configured).
 */
import { createHmac } from 'node:crypto';
import type { IceServer } from '@peerway/protocol';

export interface IceConfig {
  stunUrls: string[];
  turnUrls: string[];
  turnSecret?: string | undefined;
  turnCredentialTtlS: number;
}

/** TURN REST credentials for `id`, valid for `ttlS` seconds from `nowMs`. */
export function turnCredentials(
  secret: string,
  id: string,
  nowMs: number,
  ttlS: number,
): { username: string; credential: string } {
  const username = `${Math.floor(nowMs / 1000) + ttlS}:${id}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

const rank = (u: string) => (u.startsWith('turns:') ? 2 : /transport=tcp/i.test(u) ? 1 : 0);

/** The ICE server list for one session. Empty when nothing is configured. */
export function iceServersFor(cfg: IceConfig, sessionId: string, nowMs: number): IceServer[] {
  const out: IceServer[] = [];
  if (cfg.stunUrls.length > 0) out.push({ urls: cfg.stunUrls });
  if (cfg.turnUrls.length > 0 && cfg.turnSecret) {
    const urls = [...cfg.turnUrls].sort((a, b) => rank(a) - rank(b));
    out.push({
      urls,
      ...turnCredentials(cfg.turnSecret, sessionId, nowMs, cfg.turnCredentialTtlS),
    });
  }
  return out;
}
