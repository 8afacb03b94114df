/**
 * Service access tokens: short-lived JWTs the server signs (EdDSA) and the
 * agent verifies itself, with the server's public key that reached it over
 * its authenticated connection. The audience names the service, so a token
 * for one service never opens another.
 */
import {
  SignJWT,
  jwtVerify,
  errors as joseErrors,
  importJWK,
  type JWK,
  type CryptoKey,
} from 'jose';
import { PeerwayError } from '../errors';

export const ACCESS_TOKEN_ALG = 'EdDSA';
/** Default life of a service access token. */
export const ACCESS_TOKEN_TTL_S = 300;

/** The `aud` of a token for `service`. */
export function serviceAudience(service: string): string {
  return `peerway:service:${service}`;
}

/**
 * The service's access setting the server checked when it minted a token:
 * `public` (anyone may have one), or `private` (the owner, or a user the
 * owner shared it with). An agent that declared a service private serves
 * only `private` tokens, whatever the server's record says now.
 */
export type TokenAccess = 'public' | 'private';

export interface AccessClaims {
  service: string;
  /** User ID, or "anonymous" for a public service. */
  subject: string;
  /** Under which access the token was minted; a token without the claim counts as `public`. */
  access: TokenAccess;
  expiresAt: number;
}

/** Signs a service access token. */
export async function signServiceAccessToken(args: {
  privateKey: CryptoKey | Uint8Array;
  issuer: string;
  service: string;
  subject: string;
  /** What the server checked: `private` only when it checked the subject's own right. */
  access: TokenAccess;
  ttlSeconds?: number;
  nowMs?: number;
}): Promise<string> {
  const now = Math.floor((args.nowMs ?? Date.now()) / 1000);
  return new SignJWT({ svc: args.service, acc: args.access })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG })
    .setIssuer(args.issuer)
    .setAudience(serviceAudience(args.service))
    .setSubject(args.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + (args.ttlSeconds ?? ACCESS_TOKEN_TTL_S))
    .sign(args.privateKey);
}

/** Imports the server's public JWK as a verification key. */
export async function importServerKey(jwk: Record<string, unknown>): Promise<CryptoKey> {
  const key = await importJWK(jwk as JWK, ACCESS_TOKEN_ALG);
  if (key instanceof Uint8Array)
    throw new PeerwayError('bad_request', 'server key must be an asymmetric JWK');
  return key;
}

/**
 * Verifies a service access token for `service`. Throws `unauthorized`
 * (missing, malformed, bad signature, wrong issuer), `forbidden` (a token for
 * another service) or `expired`.
 */
export async function verifyServiceAccessToken(
  token: string | undefined,
  args: { publicKey: CryptoKey; issuer: string; service: string; nowMs?: number },
): Promise<AccessClaims> {
  if (!token)
    throw new PeerwayError('unauthorized', 'no access token was presented for this service');
  try {
    const { payload } = await jwtVerify(token, args.publicKey, {
      issuer: args.issuer,
      audience: serviceAudience(args.service),
      algorithms: [ACCESS_TOKEN_ALG],
      ...(args.nowMs === undefined ? {} : { currentDate: new Date(args.nowMs) }),
    });
    return {
      service: args.service,
      subject: String(payload.sub ?? ''),
      access: payload.acc === 'private' ? 'private' : 'public',
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  } catch (cause) {
    if (cause instanceof joseErrors.JWTExpired) {
      throw new PeerwayError(
        'expired',
        'the access token has expired; reload the page to get a new one',
        { cause },
      );
    }
    if (cause instanceof joseErrors.JWTClaimValidationFailed && cause.claim === 'aud') {
      throw new PeerwayError('forbidden', `the access token is not for service "${args.service}"`, {
        cause,
      });
    }
    throw new PeerwayError('unauthorized', 'the access token is not valid for this server', {
      cause,
    });
  }
}
