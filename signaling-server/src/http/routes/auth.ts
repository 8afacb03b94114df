/**
 * Accounts: sign-up, sign-in (password or an external identity provider's
 * token), sign-out, and who am I (`/api/auth/*`, `/api/me`).
 */
import type { Response } from 'express';
import { z } from 'zod';
import { PeerwayError } from '@peerway/protocol';
import { SESSION_TTL_S, type Auth, type SessionCookie } from '../../auth/auth';
import { RetryLaterError } from '../../auth/signin-limiter';
import type { User } from '../../store/store';
import { bearerOf, needUser, sessionCookieOf } from '../caller';
import { body, route } from '../errors';
import type { RouteModule } from '../route-module';
import { publicUser } from '../views';

const Credentials = z.object({ email: z.string().max(320), password: z.string().max(1024) });
const SignupBody = Credentials.extend({ invite: z.string().max(128).optional() });
const ExternalBody = z.object({ token: z.string().min(1).max(8192) });

/** The account routes; `session` is the session cookie's name and flags. */
export function authRoutes(deps: {
  auth: Pick<
    Auth,
    'signup' | 'login' | 'externalProvider' | 'external' | 'sessionToken' | 'revokeSession'
  >;
  session: SessionCookie;
}): RouteModule {
  const { auth, session } = deps;
  return (r) => {
    const setSession = async (res: Response, user: User) => {
      // No Domain attribute: the cookie stays on the gateway host and is never
      // sent to service subdomains.
      res.cookie(session.name, await auth.sessionToken(user), {
        httpOnly: true,
        sameSite: 'lax',
        secure: session.secure,
        path: '/',
        maxAge: SESSION_TTL_S * 1000,
      });
    };

    r.post(
      '/api/auth/signup',
      route(async (req, res) => {
        const b = body(SignupBody, req);
        const user = await retryAfter(res, () =>
          auth.signup(b.email, b.password, b.invite, req.ip),
        );
        await setSession(res, user);
        res.status(201).json({ user: publicUser(user) });
      }),
    );
    r.post(
      '/api/auth/login',
      route(async (req, res) => {
        const b = body(Credentials, req);
        const user = await retryAfter(res, () => auth.login(b.email, b.password, req.ip));
        await setSession(res, user);
        res.json({ user: publicUser(user) });
      }),
    );
    // External sign-in (Clerk, Auth0, Keycloak…): the provider's front end gets
    // a JWT; posting it here exchanges it for a gateway session cookie.
    r.post(
      '/api/auth/external',
      route(async (req, res) => {
        if (!auth.externalProvider)
          throw new PeerwayError('not_found', 'this server has no external identity provider');
        const { token } = body(ExternalBody, req);
        const user = await auth.external(token);
        if (!user)
          throw new PeerwayError('unauthorized', 'the identity provider token was not accepted');
        await setSession(res, user);
        res.json({ user: publicUser(user) });
      }),
    );
    r.post(
      '/api/auth/logout',
      route(async (req, res) => {
        // Revoked server-side too: a copied cookie must stop working as well,
        // and so must a session token sent as a bearer (a script's sign-in).
        const cookie = sessionCookieOf(req, session);
        const bearer = bearerOf(req);
        await auth.revokeSession(cookie);
        if (bearer !== cookie) await auth.revokeSession(bearer);
        // With the same attributes: a browser ignores a __Host- cookie without Secure.
        res.clearCookie(session.name, {
          httpOnly: true,
          sameSite: 'lax',
          secure: session.secure,
          path: '/',
        });
        res.json({ ok: true });
      }),
    );
    r.get(
      '/api/me',
      route(async (req, res) => {
        res.json({ user: publicUser(needUser(req)) });
      }),
    );
  };
}

/**
 * Runs a sign-in step; a refusal that says when to come back gets a
 * Retry-After header (whole seconds), a busy server's refusal one of 1 s.
 */
async function retryAfter<T>(res: Response, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RetryLaterError)
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    else if (err instanceof PeerwayError && err.code === 'rate_limited')
      res.setHeader('Retry-After', '1');
    throw err;
  }
}
