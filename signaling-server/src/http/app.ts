/**
 * The HTTP API under /api (JSON; bearer token or session cookie), plus
 * /healthz and /metrics. Every body is validated with zod; every error
 * leaves as `{ error: { code, message } }`.
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { parse as parseCookie } from 'cookie';
import { z } from 'zod';
import { PeerwayError, isValidServiceName, type NodeLoad } from '@peerway/protocol';
import { signServiceAccessToken, shortIdOf } from '@peerway/protocol/node';
import { claimState, redeemClaim, rememberRemoval } from '../nodes/claims';
import type { Registry } from 'prom-client';
import type { NodeRecord, Store, User } from '../store/store';
import { SESSION_TTL_S, sessionCookie, type Auth } from '../auth/auth';
import { logger } from '../logger';
import type { ServerKeys } from '../auth/keys';
import { body, errorHandler, route } from './errors';
import { serviceOrigin, serviceOriginRouter } from '../web/service-origin';
import { mountPages } from '../web/pages';
import { mountEvents } from './events';
import { requireGatewayHost } from './hosts';
import { RetryLaterError } from '../auth/signin-limiter';

/** What the HTTP layer needs to know about live connections. */
export interface PresenceView {
  isOnline(nodeId: string): boolean;
  /** The load the node reported last (sessions, CPU, memory, bandwidth). */
  load?(nodeId: string): NodeLoad | undefined;
}

export interface HttpDeps {
  store: Store;
  auth: Auth;
  keys: ServerKeys;
  presence: PresenceView;
  metrics: Registry;
  config: {
    publicUrl: string;
    baseDomain: string;
    port: number;
    /** The listen address, and more names the gateway answers on (./hosts.ts). */
    host?: string;
    allowedHosts?: readonly string[];
    /** When set, /metrics needs `Authorization: Bearer <metricsToken>`. */
    metricsToken?: string | undefined;
    /** Whether anyone may sign up (the sign-in page offers it only then). */
    openSignup?: boolean;
  };
  /** Told when a node gets claimed over HTTP, so its live connection learns it. */
  onNodeClaimed(nodeId: string): void;
  /** Told when a node is removed, so its live connection is closed. */
  onNodeRemoved?(nodeId: string): void;
  /** Told when a service's access, shares or serving grants change, so sessions that lost their right end. */
  onServiceChanged?(name: string): void;
  /** Extra read-only figures for the admin view. */
  adminStats(): unknown;
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: User | null;
  }
}

const Credentials = z.object({ email: z.string().max(320), password: z.string().max(1024) });
const SignupBody = Credentials.extend({ invite: z.string().max(128).optional() });
const ClaimBody = z.object({ claimToken: z.string().min(1).max(4096) });
const VisibilityBody = z.object({ isPublic: z.boolean() });
const AccessBody = z.object({ access: z.enum(['private', 'public', 'shared']) });
const ShareBody = z.object({ email: z.string().max(320) });
const ExternalBody = z.object({ token: z.string().min(1).max(8192) });
const TokenBody = z.object({
  name: z.string().min(1).max(64).default('token'),
  /** Unset: the token lives until revoked. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
const DAY_MS = 24 * 3600 * 1000;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Nodes the admin node list shows at most. */
const ADMIN_NODES_MAX = 1000;

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

/** Builds the express app. */
export function createApp(deps: HttpDeps): express.Express {
  const { store, auth, presence, config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // The session cookie's name and flags, from the public URL, once (see sessionCookie).
  const session = sessionCookie(config.publicUrl);
  if (!session.secure)
    logger('http').warn(
      { publicUrl: config.publicUrl },
      'the public URL is plain HTTP on a non-loopback host: the session cookie cannot be Secure or __Host- here; real deployments need HTTPS',
    );
  // Service origins first: nothing of the gateway is reachable there.
  app.use(serviceOriginRouter({ config, store, keys: deps.keys }));
  // Then only the gateway's own names (against DNS rebinding): others get 421.
  app.use(requireGatewayHost(config));
  // Every gateway response (dashboard, sign-in, /authorize, API) refuses to be
  // framed, by any site and by the service origins alike: no clickjacking of
  // the dashboard or the authorize hop.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', "frame-ancestors 'none'");
    res.setHeader('X-Frame-Options', 'DENY');
    next();
  });
  app.use(express.json({ limit: '64kb' }));

  // Who is calling: bearer first, then the session cookie.
  app.use(
    route(async (req, _res, next) => {
      const h = req.headers.authorization;
      const bearer = h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
      const cookie = req.headers.cookie ? parseCookie(req.headers.cookie)[session.name] : undefined;
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
    }),
  );

  const needUser = (req: Request): User => {
    if (!req.user)
      throw new PeerwayError(
        'unauthorized',
        'sign in, or send an access token as "Authorization: Bearer …"',
      );
    return req.user;
  };
  const needAdmin = (req: Request): User => {
    const u = needUser(req);
    if (!u.isAdmin) throw new PeerwayError('forbidden', 'this needs an admin account');
    return u;
  };
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
  const serviceUrl = (name: string) => `${serviceOrigin(config, name)}/`;
  const ownNode = async (req: Request): Promise<NodeRecord> => {
    const user = needUser(req);
    const id = String(req.params.id);
    const node = (await store.getNode(id)) ?? (await store.getNodeByShortId(id));
    if (!node || node.ownerId !== user.id)
      throw new PeerwayError('not_found', `you have no node ${id}`);
    return node;
  };
  const nodeView = async (n: NodeRecord) => {
    const services = await store.listNodeServices(n.id);
    return {
      id: n.id,
      shortId: n.shortId,
      name: n.name,
      online: presence.isOnline(n.id),
      lastSeen: n.lastSeen,
      load: presence.load?.(n.id) ?? null,
      isPublic: n.isPublic,
      services: await Promise.all(
        services.map(async (s) => ({
          name: s.name,
          description: s.description,
          url: serviceUrl(s.name),
          access: (await store.getService(s.name))?.access ?? 'private',
        })),
      ),
    };
  };

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  const metricsAllowed = metricsTokenCheck(config.metricsToken);
  app.get(
    '/metrics',
    route(async (req, res) => {
      if (!metricsAllowed(req.headers.authorization)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new PeerwayError(
          'unauthorized',
          'the metrics need "Authorization: Bearer <the server\'s --metrics-token>"',
        );
      }
      res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
    }),
  );

  // --- accounts
  app.post(
    '/api/auth/signup',
    route(async (req, res) => {
      const b = body(SignupBody, req);
      const user = await retryAfter(res, () => auth.signup(b.email, b.password, b.invite, req.ip));
      await setSession(res, user);
      res.status(201).json({ user: publicUser(user) });
    }),
  );
  app.post(
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
  app.post(
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
  app.post(
    '/api/auth/logout',
    route(async (req, res) => {
      // Revoked server-side too: a copied cookie must stop working as well,
      // and so must a session token sent as a bearer (a script's sign-in).
      const cookie = req.headers.cookie ? parseCookie(req.headers.cookie)[session.name] : undefined;
      const h = req.headers.authorization;
      const bearer = h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
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
  app.get(
    '/api/me',
    route(async (req, res) => {
      res.json({ user: publicUser(needUser(req)) });
    }),
  );

  // --- personal access tokens
  app.post(
    '/api/tokens',
    route(async (req, res) => {
      const user = needUser(req);
      const b = body(TokenBody, req);
      const t = await auth.createAccessToken(
        user.id,
        b.name,
        b.expiresInDays === undefined ? undefined : b.expiresInDays * DAY_MS,
      );
      res.status(201).json(t);
    }),
  );
  app.get(
    '/api/tokens',
    route(async (req, res) => {
      const user = needUser(req);
      const list = await store.listAccessTokens(user.id);
      res.json({
        tokens: list.map((t) => ({
          id: t.id,
          name: t.name,
          createdAt: t.createdAt,
          lastUsedAt: t.lastUsedAt,
          expiresAt: t.expiresAt,
        })),
      });
    }),
  );
  app.delete(
    '/api/tokens/:id',
    route(async (req, res) => {
      const user = needUser(req);
      if (!(await store.deleteAccessToken(user.id, String(req.params.id))))
        throw new PeerwayError('not_found', 'no such token');
      res.json({ ok: true });
    }),
  );

  // --- nodes
  app.post(
    '/api/nodes/claim',
    route(async (req, res) => {
      const user = needUser(req);
      const node = await redeemClaim(store, body(ClaimBody, req).claimToken, user.id, Date.now());
      deps.onNodeClaimed(node.id);
      res.json({ node: await nodeView(node), alreadyYours: false });
    }),
  );
  app.get(
    '/api/nodes/claim-info',
    route(async (req, res) => {
      // Lets the add-node page name the node before the user confirms.
      const { claim, state } = await claimState(store, String(req.query.token ?? ''), Date.now());
      res.json({
        name: claim.name,
        shortId: shortIdOf(claim.nodeId),
        expiresAt: claim.exp * 1000,
        claimed: state === 'claimed',
        state,
      });
    }),
  );
  app.get(
    '/c/:code',
    route(async (req, res) => {
      // Short claim links the agent prints: they lead to the add-node page.
      const code = String(req.params.code);
      const token = /^[A-Za-z0-9_-]{1,32}$/.test(code)
        ? await store.peekOneTime('claim', code, Date.now())
        : null;
      // A link whose token was spent, whose node is claimed or was removed
      // since, is gone; its owner, following it again, is shown the node is theirs.
      const c = token ? await claimState(store, token, Date.now()).catch(() => null) : null;
      const owners = c?.state === 'claimed' && !!req.user && c.node?.ownerId === req.user.id;
      if (token && c?.state !== 'open' && !owners) {
        res
          .status(410)
          .type('text/plain')
          .send(
            c?.state === 'claimed'
              ? 'This node has been claimed already: it is in its owner’s node list.\n'
              : 'This claim link has been used or has expired. Run `peerway-agent claim-url` on the node for a new one.\n',
          );
        return;
      }
      if (!token) {
        res
          .status(404)
          .type('text/plain')
          .send(
            'This claim link is unknown or has expired. Run `peerway-agent claim-url` on the node for a new one.\n',
          );
        return;
      }
      res.redirect(302, `/add-node#claim=${token}`);
    }),
  );
  const myNodes = async (user: User) =>
    Promise.all((await store.listNodesByOwner(user.id)).map(nodeView));
  app.get(
    '/api/nodes',
    route(async (req, res) => {
      res.json({ nodes: await myNodes(needUser(req)) });
    }),
  );
  app.get(
    '/api/nodes/public',
    route(async (_req, res) => {
      const nodes = await store.listPublicNodes();
      res.json({
        nodes: await Promise.all(
          nodes.map(async (n) => {
            const v = await nodeView(n);
            return {
              shortId: v.shortId,
              name: v.name,
              online: v.online,
              lastSeen: v.lastSeen,
              services: v.services.filter((s) => s.access === 'public'),
            };
          }),
        ),
      });
    }),
  );
  app.put(
    '/api/nodes/:id/visibility',
    route(async (req, res) => {
      const node = await ownNode(req);
      await store.setNodeVisibility(node.id, body(VisibilityBody, req).isPublic);
      res.json({ node: await nodeView((await store.getNode(node.id))!) });
    }),
  );
  app.delete(
    '/api/nodes/:id',
    route(async (req, res) => {
      const node = await ownNode(req);
      await rememberRemoval(store, node.id, Date.now());
      await store.deleteNode(node.id);
      // Its live connection (on whichever instance) goes too: a removed node serves nothing.
      deps.onNodeRemoved?.(node.id);
      res.json({ ok: true });
    }),
  );

  // --- services
  const ownService = async (req: Request) => {
    const user = needUser(req);
    const s = await store.getService(String(req.params.name));
    if (!s || s.ownerId !== user.id)
      throw new PeerwayError('not_found', `you have no service ${req.params.name}`);
    return s;
  };
  const myServices = async (user: User) => {
    const services = await store.listServicesByOwner(user.id);
    return Promise.all(
      services.map(async (s) => {
        const nodes = await store.listServiceNodes(s.name);
        const shares = await store.listShares(s.name);
        const emails = await Promise.all(
          shares.map(async (id) => (await store.getUserById(id))?.email),
        );
        const servers = await Promise.all(
          (await store.listServeGrants(s.name)).map(
            async (id) => (await store.getUserById(id))?.email,
          ),
        );
        return {
          name: s.name,
          url: serviceUrl(s.name),
          access: s.access,
          sharedWith: emails.filter(Boolean),
          /** Users whose nodes may serve it as well as the owner's (not the same as sharedWith). */
          servedBy: servers.filter(Boolean),
          nodes: nodes.length,
          online: nodes.some((n) => presence.isOnline(n)),
        };
      }),
    );
  };
  app.get(
    '/api/services',
    route(async (req, res) => {
      res.json({ services: await myServices(needUser(req)) });
    }),
  );
  app.put(
    '/api/services/:name/access',
    route(async (req, res) => {
      const s = await ownService(req);
      await store.setServiceAccess(s.name, body(AccessBody, req).access);
      deps.onServiceChanged?.(s.name);
      res.json({ ok: true });
    }),
  );
  app.post(
    '/api/services/:name/shares',
    route(async (req, res) => {
      const s = await ownService(req);
      const u = await store.getUserByEmail(body(ShareBody, req).email);
      if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
      await store.addShare(s.name, u.id);
      res.status(201).json({ ok: true });
    }),
  );
  app.delete(
    '/api/services/:name/shares/:email',
    route(async (req, res) => {
      const s = await ownService(req);
      const u = await store.getUserByEmail(String(req.params.email));
      if (u) await store.removeShare(s.name, u.id);
      deps.onServiceChanged?.(s.name);
      res.json({ ok: true });
    }),
  );
  // The right to serve: a user's nodes may announce the service and take its
  // visitors (with their tokens). A separate grant from a share, which only
  // lets a user open it.
  app.post(
    '/api/services/:name/servers',
    route(async (req, res) => {
      const s = await ownService(req);
      const u = await store.getUserByEmail(body(ShareBody, req).email);
      if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
      if (u.id === s.ownerId)
        throw new PeerwayError('bad_request', 'your own nodes serve your services already');
      await store.addServeGrant(s.name, u.id);
      deps.onServiceChanged?.(s.name);
      res.status(201).json({ ok: true });
    }),
  );
  app.delete(
    '/api/services/:name/servers/:email',
    route(async (req, res) => {
      const s = await ownService(req);
      const u = await store.getUserByEmail(String(req.params.email));
      if (u) await store.removeServeGrant(s.name, u.id);
      deps.onServiceChanged?.(s.name);
      res.json({ ok: true });
    }),
  );
  app.options('/api/services/:name/access-token', (_req, res) => {
    cors(res);
    res.sendStatus(204);
  });
  app.post(
    '/api/services/:name/access-token',
    route(async (req, res) => {
      cors(res);
      const name = String(req.params.name);
      const s = isValidServiceName(name) ? await store.getService(name) : null;
      if (!s)
        throw new PeerwayError('service_unknown', `there is no service "${name}" on this server`);
      // The caller's own right (owner, or a share while shared), apart from
      // anyone's right to a public service: a node that declared the service
      // private serves only tokens minted for an own right.
      const user = s.access === 'public' ? req.user : needUser(req);
      const ownRight =
        !!user &&
        (user.id === s.ownerId || (s.access === 'shared' && (await store.hasShare(name, user.id))));
      if (!ownRight && s.access !== 'public')
        throw new PeerwayError(
          'forbidden',
          `${user!.email} has no access to "${name}"; ask its owner to share it`,
        );
      const token = await signServiceAccessToken({
        privateKey: deps.keys.accessPrivateKey,
        issuer: config.publicUrl,
        service: name,
        subject: user?.id ?? 'anonymous',
        access: ownRight ? 'private' : 'public',
      });
      res.json({ token, service: name });
    }),
  );

  // --- live updates: what the dashboard shows, pushed when it changes
  mountEvents(app, {
    user: needUser,
    snapshot: async (user, admin) => ({
      nodes: await myNodes(user),
      services: await myServices(user),
      ...(admin && user.isAdmin ? { admin: await deps.adminStats() } : {}),
    }),
  });

  // --- admin
  app.get(
    '/api/admin/users',
    route(async (req, res) => {
      needAdmin(req);
      res.json({ users: (await store.listUsers()).map(publicUser) });
    }),
  );
  app.get(
    '/api/admin/nodes',
    route(async (req, res) => {
      needAdmin(req);
      // Unclaimed keys are anyone's to make: they are counted, and listed
      // only while online (or with ?unclaimed=1), so the view stays small.
      const all = req.query.unclaimed === '1';
      const nodes = (await store.listAllNodes()).filter(
        (n) => all || n.ownerId || presence.isOnline(n.id),
      );
      res.json({
        nodes: await Promise.all(
          nodes.slice(0, ADMIN_NODES_MAX).map(async (n) => ({
            ...(await nodeView(n)),
            ownerId: n.ownerId,
          })),
        ),
        truncated: nodes.length > ADMIN_NODES_MAX,
        unclaimed: await store.countUnclaimedNodes(),
      });
    }),
  );
  app.get(
    '/api/admin/signaling',
    route(async (req, res) => {
      needAdmin(req);
      res.json(await deps.adminStats());
    }),
  );

  mountPages(app, { config, store, keys: deps.keys });

  app.use('/api', (_req: Request, _res: Response, next: NextFunction) =>
    next(new PeerwayError('not_found', 'no such API route')),
  );
  app.use(errorHandler);
  return app;
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

/** Whether an Authorization header carries the metrics token (always, when none is set). */
function metricsTokenCheck(
  token: string | undefined,
): (authorization: string | undefined) => boolean {
  if (!token) return () => true;
  const want = createHash('sha256').update(token).digest();
  return (authorization) => {
    const given = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : '';
    // Digests of equal length, compared in constant time: the answer's timing
    // says nothing about how much of a guess was right.
    return timingSafeEqual(createHash('sha256').update(given).digest(), want);
  };
}

function cors(res: Response): void {
  // Service origins (other subdomains) fetch access tokens for public
  // services; never with credentials, so `*` exposes nothing.
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type');
  res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
}

function publicUser(u: User) {
  return { id: u.id, email: u.email, isAdmin: u.isAdmin, createdAt: u.createdAt };
}
