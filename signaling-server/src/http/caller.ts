/**
 * Who is calling: a bearer token first, then the session cookie, put on
 * `req.user` once for every route; and the guards route modules ask with.
 */
import type { Request, RequestHandler } from 'express';
import { parse as parseCookie } from 'cookie';
import { PeerwayError } from '@peerway/protocol';
import type { Auth, SessionCookie } from '../auth/auth';
import type { NodeRecord, Store, User } from '../store/store';
import { route } from './errors';

declare module 'express-serve-static-core' {
  interface Request {
    user?: User | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The token of an `Authorization: Bearer …` header, if there is one. */
export function bearerOf(req: Request): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

/** The value of the session cookie, if the request carries one. */
export function sessionCookieOf(req: Request, session: SessionCookie): string | undefined {
  return req.headers.cookie ? parseCookie(req.headers.cookie)[session.name] : undefined;
}

/** Whether a browser says the request came from a page of another origin. */
function crossSite(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (!origin) return false; // not a browser, or a browser old enough to send neither
  try {
    return origin === 'null' || new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/** Middleware: sets `req.user` (null for nobody) from the bearer token or the session cookie. */
export function identifyCaller(
  auth: Pick<Auth, 'authenticate'>,
  session: SessionCookie,
): RequestHandler {
  return route(async (req, _res, next) => {
    const bearer = bearerOf(req);
    const cookie = sessionCookieOf(req, session);
    // A session cookie rides along with any request the browser makes, also
    // one another site's page starts: writes on its strength must come from
    // the gateway's own pages (bearer tokens are never sent by themselves).
    if (!bearer && cookie && !SAFE_METHODS.has(req.method) && crossSite(req))
      throw new PeerwayError(
        'forbidden',
        'a cross-site request may not act on a signed-in session: use the dashboard, or send an access token',
      );
    req.user = await auth.authenticate(bearer ?? cookie);
    next();
  });
}

/** The signed-in caller, or a 401 that says how to sign in. */
export function needUser(req: Request): User {
  if (!req.user)
    throw new PeerwayError(
      'unauthorized',
      'sign in, or send an access token as "Authorization: Bearer …"',
    );
  return req.user;
}

/** The signed-in caller if an admin, or a 403. */
export function needAdmin(req: Request): User {
  const u = needUser(req);
  if (!u.isAdmin) throw new PeerwayError('forbidden', 'this needs an admin account');
  return u;
}

/**
 * The caller's own node named in the path (`:id`, its ID or short ID);
 * anyone else's, or none, is a 404 that does not say which.
 */
export async function ownNodeOf(
  store: Pick<Store, 'getNode' | 'getNodeByShortId'>,
  req: Request,
): Promise<NodeRecord> {
  const user = needUser(req);
  const id = String(req.params.id);
  const node = (await store.getNode(id)) ?? (await store.getNodeByShortId(id));
  if (!node || node.ownerId !== user.id)
    throw new PeerwayError('not_found', `you have no node ${id}`);
  return node;
}
