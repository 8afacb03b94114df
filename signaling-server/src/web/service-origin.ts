/**
 * Requests to a service origin (`<service>.<base-domain>`): every navigation
 * gets the shell page; /__peerway/ serves the shell's own assets and its
 * token endpoint. Nothing of the gateway (API, session cookie) is reachable
 * here, and no cookie is ever set on a service origin.
 */
import { readFileSync, existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import express, {
  type Request,
  type Response,
  type NextFunction,
  type RequestHandler,
} from 'express';
import { isValidServiceName } from '@peerway/protocol';
import type { Store } from '../store/store';
import type { ServerKeys } from '../auth/keys';
import { shellToken, userRight, verifyRenewal } from './service-token';
import { REVOKED_SESSIONS } from '../auth/auth';

/**
 * Where the built web client lives: in a published package, web/ beside the
 * built server's dist/ (scripts/copy-web.mjs puts it there at pack time); in
 * the repository, web-client/dist (npm run build -w @peerway/web-client).
 */
export const WEB_DIST =
  basename(import.meta.dirname) === 'dist'
    ? resolve(import.meta.dirname, '../web')
    : resolve(import.meta.dirname, '../../../web-client/dist');
const ASSETS = new Set([
  'shell.js',
  'sw.js',
  'shim.js',
  'shell.js.map',
  'sw.js.map',
  'shim.js.map',
]);
/** Code-split chunks of the shell: content-hashed names, so cached for good. */
const CHUNK = /^chunks\/[A-Za-z0-9_-]+\.js(\.map)?$/;
/** The token endpoint's body: `{ renew }`, a renewal credential from /authorize (optional). */
const tokenBody = express.json({ limit: '8kb' });

export interface OriginConfig {
  publicUrl: string;
  baseDomain: string;
}

/** The service name a Host header names, or null for the gateway (or anything else). */
export function serviceFromHost(host: string | undefined, baseDomain: string): string | null {
  if (!host) return null;
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.${baseDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  const label = hostname.slice(0, -suffix.length);
  return isValidServiceName(label) ? label : null;
}

/** The URL of a service origin, on the gateway's scheme and port. */
export function serviceOrigin(cfg: OriginConfig, service: string): string {
  const u = new URL(cfg.publicUrl);
  return `${u.protocol}//${service}.${cfg.baseDomain}${u.port ? `:${u.port}` : ''}`;
}

let shellTemplate: string | null = null;

/**
 * The shell page with its config and, inline, its first script
 * (web-client/src/shell/early.ts: it asks for the session and makes the
 * offer while the bundle loads). Both are built files, read once.
 */
function shellHtml(config: { service: string; gateway: string; token?: string }): string | null {
  if (shellTemplate === null) {
    const page = join(WEB_DIST, 'shell.html');
    const early = join(WEB_DIST, 'early.js');
    if (!existsSync(page) || !existsSync(early)) return null;
    const script = readFileSync(early, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '');
    shellTemplate = readFileSync(page, 'utf8').replace(
      '<head>',
      `<head><script>window.__PEERWAY__=__CONFIG__;${script}</script>`,
    );
  }
  // JSON in a script: escape "<" so no value can close the tag.
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return shellTemplate.replace('__CONFIG__', () => json);
}

export function serviceOriginRouter(deps: {
  config: OriginConfig;
  store: Store;
  keys: ServerKeys;
}): RequestHandler {
  const { config, store } = deps;
  const publicToken = (service: string) =>
    shellToken(deps.keys, config.publicUrl, service, 'anonymous', 'public');

  /**
   * POST /__peerway/token: a fresh short token. With a renewal credential,
   * for its user, after checking the user's right again now (a share taken
   * back or a service made private ends renewal at once); without one (or
   * with one that no longer holds), only for a public service.
   */
  const issueToken = async (service: string, renew: unknown, res: Response) => {
    const s = await store.getService(service);
    if (!s)
      return res.status(404).json({
        error: {
          code: 'service_unknown',
          message: `there is no service "${service}" on this server`,
        },
      });
    res.setHeader('Cache-Control', 'no-store');
    const userId =
      renew === undefined
        ? null
        : await verifyRenewal(
            deps.keys,
            config.publicUrl,
            service,
            renew,
            async (sid) => (await store.peekOneTime(REVOKED_SESSIONS, sid, Date.now())) !== null,
          );
    const right = userId ? await userRight(store, service, userId) : null;
    if (userId && right)
      return res.json({
        token: await shellToken(deps.keys, config.publicUrl, service, userId, right),
      });
    if (s.access === 'public') return res.json({ token: await publicToken(service) });
    return res.status(401).json({
      error: {
        code: 'unauthorized',
        message:
          renew === undefined
            ? 'this service is private: sign in'
            : 'this sign-in no longer gives access to this service: sign in again',
      },
      authorize: `${config.publicUrl}/authorize?service=${service}`,
    });
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const service = serviceFromHost(req.headers.host, config.baseDomain);
    if (!service) return next();
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    // The shell frames its app on its own origin; no other site may frame
    // the shell (the gateway's pages refuse every frame, see app.ts).
    res.setHeader('Content-Security-Policy', "frame-ancestors 'self'");
    const path = req.path;
    if (path.startsWith('/__peerway/')) {
      const name = path.slice('/__peerway/'.length);
      if (ASSETS.has(name) || CHUNK.test(name)) {
        const file = join(WEB_DIST, name);
        if (!existsSync(file) && CHUNK.test(name))
          return void res.status(404).type('text/plain').send('not found\n');
        if (!existsSync(file))
          return void res
            .status(503)
            .type('text/plain')
            .send('Peerway web client is not built: run `npm run build`.\n');
        if (name === 'sw.js') {
          res.setHeader('Service-Worker-Allowed', '/');
          res.setHeader('Cache-Control', 'no-cache');
        } else if (CHUNK.test(name))
          res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
        else res.setHeader('Cache-Control', 'no-cache');
        return void res.sendFile(file);
      }
      if (name === 'token' && req.method === 'POST') {
        tokenBody(req, res, (err?: unknown) => {
          if (err)
            return void res.status(400).json({
              error: { code: 'bad_request', message: 'the body must be JSON: { "renew": "…" }' },
            });
          void issueToken(service, (req.body as { renew?: unknown } | undefined)?.renew, res).catch(
            next,
          );
        });
        return;
      }
      if (name !== 'callback') return void res.status(404).type('text/plain').send('not found\n');
    }
    // Navigations get the shell; anything else reached the server before the
    // service worker took over, and cannot be answered here.
    const dest = req.headers['sec-fetch-dest'];
    const isNavigation =
      req.method === 'GET' &&
      (dest === 'document' || (!dest && /text\/html/.test(req.headers.accept ?? '')));
    if (!isNavigation) {
      return void res
        .status(503)
        .type('text/plain')
        .send(
          'Peerway: this request must come from the service page (its service worker is not active yet).\n',
        );
    }
    // A public service's page carries its token (anyone may have one): the
    // shell opens the tunnel without asking first, one round trip sooner.
    void (async () => {
      const s = await store.getService(service);
      const token = s?.access === 'public' ? await publicToken(service) : undefined;
      const html = shellHtml({ service, gateway: config.publicUrl, ...(token ? { token } : {}) });
      if (!html)
        return void res
          .status(503)
          .type('text/plain')
          .send('Peerway web client is not built: run `npm run build`.\n');
      res.setHeader('Cache-Control', 'no-store');
      res.type('html').send(html);
    })().catch(next);
  };
}
