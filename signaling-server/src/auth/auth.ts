/**
 * Who is calling: built-in accounts (email + scrypt password) with session
 * JWTs in an HttpOnly cookie, personal access tokens for automation, and
 * bearer JWTs from an external identity provider (Clerk, Auth0, Keycloak…)
 * verified against its JWKS.
 */
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { PeerwayError } from '@peerway/protocol';
import type { Store, User } from '../store/store';
import type { ServerKeys } from './keys';
import {
  DEFAULT_HASH_LIMITS,
  HashGate,
  hashPassword,
  verifyPassword,
  type HashLimits,
} from './password';
import { DEFAULT_SIGNIN_LIMITS, SigninLimiter, type SigninLimits } from './signin-limiter';
import { TokenCache } from './token-cache';
import { logger } from '../logger';

const log = logger('auth');

/** The session cookie: its name, and whether it is sent only over HTTPS. */
export interface SessionCookie {
  name: string;
  secure: boolean;
}

/**
 * The session cookie for a gateway at `publicUrl`, decided once. On HTTPS,
 * or on a loopback host (browsers keep Secure cookies for http://localhost),
 * it is `__Host-pw_session`: Secure, Path=/ and no Domain, which the browser
 * itself enforces, so no service subdomain or plain-HTTP page can set or
 * shadow it. Any other plain-HTTP host (a test lab's made-up name) cannot
 * keep a Secure cookie at all: there it is `pw_session` without Secure, and
 * the server warns at start that real deployments need HTTPS.
 */
export function sessionCookie(publicUrl: string): SessionCookie {
  const u = new URL(publicUrl);
  const host = u.hostname.toLowerCase();
  const loopback =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  return u.protocol === 'https:' || loopback
    ? { name: '__Host-pw_session', secure: true }
    : { name: 'pw_session', secure: false };
}

export const SESSION_TTL_S = 7 * 24 * 3600;
const SIGNUP_INVITE_TTL_MS = 7 * 24 * 3600 * 1000;
const TOKEN_PREFIX = 'pwt_';
/** One-time-store kind of revoked session JWT ids. */
export const REVOKED_SESSIONS = 'revoked-session';
const REVOKED = REVOKED_SESSIONS;

export interface AuthConfig {
  publicUrl: string;
  openSignup: boolean;
  authJwksUrl?: string | undefined;
  authIssuer?: string | undefined;
  authAudience?: string | undefined;
}

/** What tests (and a server) may set beyond the configuration: time, and the sign-in limits. */
export interface AuthOptions {
  /** The clock the sign-in limiter and token expiry read (default Date.now). */
  now?: () => number;
  signinLimits?: Partial<SigninLimits>;
  hashLimits?: Partial<HashLimits>;
  /** How long a resolved access token is kept (default TOKEN_CACHE_MS; 0: never). */
  tokenCacheMs?: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
let dummy: Promise<string> | null = null;
const dummyHash = () => (dummy ??= hashPassword(randomBytes(16).toString('hex')));
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

export class Auth {
  private readonly jwks: JWTVerifyGetKey | null;
  private readonly now: () => number;
  /** Failed sign-ins per IP and per account (in memory, per instance). */
  readonly signins: SigninLimiter;
  /** Bounds concurrent scrypt work (sign-in and sign-up). */
  readonly hashing: HashGate;
  /** Access tokens resolved a moment ago (see token-cache.ts). */
  readonly tokens: TokenCache;

  constructor(
    private readonly store: Store,
    private readonly keys: ServerKeys,
    private readonly config: AuthConfig,
    opts: AuthOptions = {},
  ) {
    this.jwks = config.authJwksUrl ? createRemoteJWKSet(new URL(config.authJwksUrl)) : null;
    this.now = opts.now ?? Date.now;
    this.signins = new SigninLimiter({ ...DEFAULT_SIGNIN_LIMITS, ...opts.signinLimits }, this.now);
    this.hashing = new HashGate({ ...DEFAULT_HASH_LIMITS, ...opts.hashLimits });
    this.tokens = new TokenCache(this.now, opts.tokenCacheMs);
  }

  /** On a store with no users, makes a one-time admin sign-up link (else null). */
  async ensureAdminInvite(): Promise<string | null> {
    if ((await this.store.countUsers()) > 0) return null;
    const invite = randomBytes(18).toString('base64url');
    await this.store.putOneTime('signup', invite, 'admin', Date.now() + SIGNUP_INVITE_TTL_MS);
    return `${this.config.publicUrl}/signup?invite=${invite}`;
  }

  /**
   * Creates a built-in account. The admin invite makes an admin; otherwise
   * open sign-up must be on. Refused sign-ups (no or a spent invite) count
   * against the caller's IP like failed sign-ins, and its wait applies.
   */
  async signup(email: string, password: string, invite?: string, ip?: string): Promise<User> {
    if (!EMAIL_RE.test(email)) throw new PeerwayError('bad_request', 'enter a valid email address');
    if (password.length < 8)
      throw new PeerwayError('bad_request', 'the password must be at least 8 characters');
    this.signins.check(ip);
    // Before any hashing: a closed server spends nothing on strangers.
    if (!invite && !this.config.openSignup) {
      this.signins.failed(ip);
      throw new PeerwayError('forbidden', 'sign-up is by invitation only on this server');
    }
    // Checked before an invite is taken, so signing up twice does not burn it.
    if (await this.store.getUserByEmail(email))
      throw new PeerwayError('conflict', `an account for ${email} exists already: sign in`);
    const passwordHash = await this.hashing.run(() => hashPassword(password));
    if (!invite) {
      if ((await this.store.countUsers()) === 0)
        throw new PeerwayError(
          'forbidden',
          'the first account must be made with the admin sign-up link the server printed',
        );
      return this.store.createUser({ email, passwordHash, isAdmin: false, externalSubject: null });
    }
    const kind = await this.store.takeOneTime('signup', invite, Date.now());
    if (!kind) {
      this.signins.failed(ip);
      throw new PeerwayError('expired', 'this sign-up link was already used or has expired');
    }
    try {
      const user = await this.store.createUser({
        email,
        passwordHash,
        isAdmin: kind === 'admin',
        externalSubject: null,
      });
      log.info({ user: user.id, isAdmin: user.isAdmin }, 'signed up with an invite');
      return user;
    } catch (err) {
      // Lost a race for the email: give the invite back for the next try.
      await this.store.putOneTime('signup', invite, kind, Date.now() + SIGNUP_INVITE_TTL_MS);
      throw err;
    }
  }

  /**
   * Checks email and password; one answer for an unknown email and a wrong
   * password. `ip` is the caller's address: after repeated failures from it,
   * or for this email, tries are refused with RetryLaterError (429) before
   * any hashing, for a wait that doubles with each further failure.
   */
  async login(email: string, password: string, ip?: string): Promise<User> {
    this.signins.check(ip, email);
    const user = await this.store.getUserByEmail(email);
    // An unknown email costs the same scrypt as a known one, so timing does
    // not tell which emails have accounts (and counts the same way below).
    const ok = await this.hashing.run(async () =>
      verifyPassword(password, user?.passwordHash ?? (await dummyHash())),
    );
    if (!user?.passwordHash || !ok) {
      this.signins.failed(ip, email);
      throw new PeerwayError('unauthorized', 'wrong email or password');
    }
    this.signins.succeeded(email);
    return user;
  }

  /** A session JWT for the cookie (with a jti, so signing out can revoke it). */
  async sessionToken(user: User): Promise<string> {
    return new SignJWT({ typ: 'session' })
      .setProtectedHeader({ alg: 'HS256' })
      .setJti(randomBytes(12).toString('base64url'))
      .setSubject(user.id)
      .setIssuer(this.config.publicUrl)
      .setIssuedAt()
      .setExpirationTime(`${SESSION_TTL_S}s`)
      .sign(this.keys.sessionSecret);
  }

  /**
   * Signs a session out for good: its JWT is refused from now until it
   * would have expired anyway (kept in the store, so every instance knows).
   * Anything that is not a valid session JWT of ours is ignored.
   */
  async revokeSession(token: string | undefined): Promise<void> {
    if (!token || token.length > 8192) return;
    try {
      const { payload } = await jwtVerify(token, this.keys.sessionSecret, {
        issuer: this.config.publicUrl,
        algorithms: ['HS256'],
      });
      if (payload.typ === 'session' && payload.jti && payload.exp)
        await this.store.putOneTime(REVOKED, payload.jti, '1', payload.exp * 1000);
    } catch {
      // expired or not ours: nothing to revoke
    }
  }

  /**
   * Makes a personal access token; the secret is returned once and only its
   * hash is kept. With `expiresInMs` it stops working that long from now
   * (else it lives until revoked).
   */
  async createAccessToken(
    userId: string,
    name: string,
    expiresInMs?: number,
  ): Promise<{ id: string; token: string; expiresAt: number | null }> {
    if (expiresInMs !== undefined && !(Number.isSafeInteger(expiresInMs) && expiresInMs > 0))
      throw new PeerwayError('bad_request', 'a token expiry must be a positive time');
    const id = randomBytes(6).toString('hex');
    const token = `${TOKEN_PREFIX}${id}_${randomBytes(24).toString('base64url')}`;
    const expiresAt = expiresInMs === undefined ? null : this.now() + expiresInMs;
    await this.store.createAccessToken({ id, userId, name, tokenHash: sha256(token), expiresAt });
    return { id, token, expiresAt };
  }

  /** Resolves a session JWT, a personal access token or an external JWT to a user (null if none fits). */
  async authenticate(token: string | undefined): Promise<User | null> {
    if (!token || token.length > 8192) return null;
    if (token.startsWith(TOKEN_PREFIX)) {
      const hash = sha256(token);
      const known = this.tokens.get(hash);
      if (known) return known;
      const rec = await this.store.findAccessTokenByHash(hash);
      if (!rec) return null;
      if (rec.expiresAt !== null && rec.expiresAt <= this.now()) return null;
      if (this.tokens.touchDue(rec.id)) void this.store.touchAccessToken(rec.id, Date.now());
      const user = await this.store.getUserById(rec.userId);
      if (user) this.tokens.put(hash, rec.id, user, rec.expiresAt);
      return user;
    }
    try {
      const { payload } = await jwtVerify(token, this.keys.sessionSecret, {
        issuer: this.config.publicUrl,
        algorithms: ['HS256'],
      });
      if (payload.typ === 'session' && payload.sub) {
        // Signed out: the cookie is gone from that browser, but a copy must not work either.
        if (payload.jti && (await this.store.peekOneTime(REVOKED, payload.jti, Date.now())))
          return null;
        return this.store.getUserById(payload.sub);
      }
    } catch {
      // not one of ours: maybe the external provider's
    }
    return this.external(token);
  }

  /** True when sign-in goes through an external identity provider (JWKS configured). */
  get externalProvider(): boolean {
    return this.jwks !== null;
  }

  /**
   * Resolves a JWT from the external identity provider (and only that: not a
   * session JWT, not a personal access token) to its user, provisioning the
   * user on first sight. Null if it is not a valid token of that provider.
   */
  async external(token: string): Promise<User | null> {
    if (!this.jwks || token.length > 8192) return null;
    try {
      const { payload } = await jwtVerify(token, this.jwks, {
        issuer: this.config.authIssuer!,
        audience: this.config.authAudience!,
      });
      if (!payload.sub) return null;
      const subject = `${payload.iss}|${payload.sub}`;
      const existing = await this.store.getUserByExternalSubject(subject);
      if (existing) return existing;
      const email =
        typeof payload.email === 'string' && EMAIL_RE.test(payload.email)
          ? payload.email
          : `${payload.sub}@external.invalid`;
      try {
        const user = await this.store.createUser({
          email,
          passwordHash: null,
          isAdmin: false,
          externalSubject: subject,
        });
        log.info({ user: user.id, subject }, 'external user provisioned');
        return user;
      } catch (err) {
        if (err instanceof PeerwayError && err.code === 'conflict') {
          // Two first requests raced and the other one made the user; or the
          // email belongs to a built-in account, which is never linked to an
          // external subject automatically (the provider may not have
          // verified the address): refused, and said in the log.
          const raced = await this.store.getUserByExternalSubject(subject);
          if (!raced)
            log.warn(
              { subject, email },
              'external sign-in refused: a built-in account has this email',
            );
          return raced;
        }
        throw err;
      }
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'external token refused');
      return null;
    }
  }
}
