/**
 * Service access tokens for shells, and the renewal credential that keeps a
 * private service's tab going without the gateway cookie.
 *
 * A service access token lives minutes, so a revoked right (a share taken
 * back, a service made private) stops opening sessions soon. A shell of a
 * private service gets its first token from /authorize (a navigation on the
 * gateway origin, where the session cookie is), and with it a renewal
 * credential: an HS256 JWT signed with the session secret, `typ: 'renew'`,
 * bound to one service (its audience) and one user (its subject), living
 * hours. The shell posts it to /__peerway/token on the service origin, and
 * the server mints a fresh short token only after checking in the store that
 * the user still has the right. It is never a session: Auth accepts only
 * `typ: 'session'` JWTs, so a leaked credential opens one service and nothing
 * of the gateway.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { signServiceAccessToken } from '@peerway/protocol/node';
import type { TokenAccess } from '@peerway/protocol/node';
import type { Store } from '../store/store';
import type { ServerKeys } from '../auth/keys';

/** Life of a service access token handed to a shell (it only opens sessions). */
export const SERVICE_TOKEN_TTL_S = 300;
/** Life of a renewal credential: after it, the shell goes through /authorize again. */
export const RENEW_CREDENTIAL_TTL_S = 12 * 3600;
const RENEW_TYP = 'renew';

const renewAudience = (service: string) => `peerway:renew:${service}`;

/**
 * The right `userId` has to `service` now: `private` when it is their own
 * (the owner, or a share while the service's access is `shared`), `public`
 * when it is not theirs but the service is public, null when they have none.
 */
export async function userRight(
  store: Store,
  service: string,
  userId: string,
): Promise<TokenAccess | null> {
  const s = await store.getService(service);
  if (!s) return null;
  if (userId === s.ownerId || (s.access === 'shared' && (await store.hasShare(service, userId))))
    return 'private';
  return s.access === 'public' ? 'public' : null;
}

/** A short-lived service access token for a shell. */
export function shellToken(
  keys: ServerKeys,
  issuer: string,
  service: string,
  subject: string,
  access: TokenAccess,
): Promise<string> {
  return signServiceAccessToken({
    privateKey: keys.accessPrivateKey,
    issuer,
    service,
    subject,
    access,
    ttlSeconds: SERVICE_TOKEN_TTL_S,
  });
}

/**
 * Signs a renewal credential for `userId` on `service`; `sid`, the gateway
 * session it came from, makes it die with that session's logout.
 */
export function signRenewal(
  keys: ServerKeys,
  issuer: string,
  service: string,
  userId: string,
  sid?: string,
): Promise<string> {
  return new SignJWT({ typ: RENEW_TYP, ...(sid ? { sid } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setJti(randomBytes(12).toString('base64url'))
    .setIssuer(issuer)
    .setAudience(renewAudience(service))
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(`${RENEW_CREDENTIAL_TTL_S}s`)
    .sign(keys.sessionSecret);
}

/**
 * The user a renewal credential for `service` names, or null when it is not
 * one (malformed, forged, expired, for another service, or another kind of
 * JWT of ours such as a session).
 */
export async function verifyRenewal(
  keys: ServerKeys,
  issuer: string,
  service: string,
  credential: unknown,
  /** True when the gateway session the credential came from was signed out. */
  sessionRevoked: (sid: string) => Promise<boolean> = async () => false,
): Promise<string | null> {
  if (typeof credential !== 'string' || credential.length > 4096) return null;
  try {
    const { payload } = await jwtVerify(credential, keys.sessionSecret, {
      issuer,
      audience: renewAudience(service),
      algorithms: ['HS256'],
    });
    if (payload.typ !== RENEW_TYP || typeof payload.sub !== 'string') return null;
    if (typeof payload.sid === 'string' && (await sessionRevoked(payload.sid))) return null;
    return payload.sub;
  } catch {
    return null;
  }
}
