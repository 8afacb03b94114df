/**
 * The HTTP app: the gateway's middleware in order, then the routes, one
 * module per concern, then the error handler. The API is under /api (JSON;
 * bearer token or session cookie), plus /healthz and /metrics. Every body is
 * validated with zod; every error leaves as `{ error: { code, message } }`.
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import { PeerwayError } from '@peerway/protocol';
import type { Registry } from 'prom-client';
import type { Store } from '../store/store';
import { sessionCookie, type Auth } from '../auth/auth';
import { logger } from '../logger';
import type { ServerKeys } from '../auth/keys';
import { serviceOriginRouter } from '../web/service-origin';
import { mountPages } from '../web/pages';
import { identifyCaller } from './caller';
import { errorHandler } from './errors';
import { requireGatewayHost } from './hosts';
import type { RouteModule } from './route-module';
import { createViews, type PresenceView } from './views';
import type { Deployments } from '../cluster/deployments';
import { adminRoutes } from './routes/admin';
import { deploymentRoutes } from './routes/deployments';
import { authRoutes } from './routes/auth';
import { eventRoutes } from './routes/events';
import { metricsRoutes } from './routes/metrics';
import { nodeRoutes } from './routes/nodes';
import { serviceRoutes } from './routes/services';
import { tokenRoutes } from './routes/tokens';
import { jobRoutes, parsesOwnBody } from './routes/jobs';
import { jobGrantRoutes } from './routes/job-grants';
import type { JobBroker } from '../jobs/broker';
import type { JobsApi } from '../jobs/api';
import type { JobFiles } from '../jobs/files';

export type { PresenceView } from './views';

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
  /** The cluster's server side (ws/index.ts makes it); without it, no deployment routes. */
  deployments?: Deployments;
  /** The jobs broker and API (../jobs/); without them, no job routes. */
  jobs?: {
    broker: JobBroker;
    api: JobsApi;
    store: Store;
    files: JobFiles;
  };
  /** Extra read-only figures for the admin view. */
  adminStats(): unknown;
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
  // The jobs routes read their own (larger) bodies: ./routes/jobs.ts.
  const json = express.json({ limit: '64kb' });
  app.use((req: Request, res: Response, next: NextFunction) =>
    parsesOwnBody(req) ? next() : json(req, res, next),
  );
  // Who is calling (req.user): bearer first, then the session cookie.
  app.use(identifyCaller(auth, session));

  // The routes, one module per concern (./routes/), each given only what it
  // needs, registered in this order. A new capability (deployments, jobs)
  // adds its module, kept in its own folder (../cluster/, ../jobs/), here.
  const views = createViews({ store, presence, config });
  const adminStats = () => deps.adminStats();
  const routes: RouteModule[] = [
    metricsRoutes({ metrics: deps.metrics, metricsToken: config.metricsToken }),
    authRoutes({ auth, session }),
    tokenRoutes({ auth, store }),
    nodeRoutes({
      store,
      views,
      onNodeClaimed: (id) => deps.onNodeClaimed(id),
      onNodeRemoved: (id) => deps.onNodeRemoved?.(id),
      onDeployersChanged: () => deps.deployments?.kick(),
    }),
    serviceRoutes({
      store,
      views,
      tokens: { privateKey: deps.keys.accessPrivateKey, issuer: config.publicUrl },
      onServiceChanged: (name) => deps.onServiceChanged?.(name),
    }),
    eventRoutes({ views, adminStats }),
    adminRoutes({ store, views, presence, adminStats }),
    ...(deps.deployments ? [deploymentRoutes({ deployments: deps.deployments })] : []),
    ...(deps.jobs
      ? [
          jobRoutes(deps.jobs),
          jobGrantRoutes({
            store: deps.jobs.store,
            grantsChanged: (id) => deps.jobs!.broker.grantsChanged(id),
          }),
        ]
      : []),
  ];
  for (const mount of routes) mount(app);

  // The dashboard and sign-in pages, after the API.
  mountPages(app, { config, store, keys: deps.keys });

  app.use('/api', (_req: Request, _res: Response, next: NextFunction) =>
    next(new PeerwayError('not_found', 'no such API route')),
  );
  app.use(errorHandler);
  return app;
}
