/**
 * Wires a Peerway server: store, auth, HTTP API, WebSocket signaling.
 *
 * Tests start one with `startPeerwayServer(parseConfig({ port: 0, dataDir }))`
 * (see `test/helpers.ts`, `withServer`): port 0 resolves before any URL is
 * handed out, and `server.url` is the address actually listened on.
 */
import { createServer, type Server } from 'node:http';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from './config';
import { SqliteStore } from './store/sqlite';
import { RedisStore } from './store/redis';
import type { Store } from './store/store';
import { Auth } from './auth/auth';
import type { SigninLimits } from './auth/signin-limiter';
import type { HashLimits } from './auth/password';
import { knownHostCheck } from './http/hosts';
import { loadServerKeys, type ServerKeys } from './auth/keys';
import { createApp } from './http/app';
import { attachSignaling, DEFAULT_LIMITS, type Signaling, type SignalingConfig } from './ws/index';
import { logger, setLogLevel } from './logger';
import { TurnMonitor } from './turn/monitor';
import { Gauge } from 'prom-client';
import { systemClock, type Clock } from './ws/clock';
import { startPurge } from './nodes/purge';
import { JobBroker } from './jobs/broker';
import { JobsApi } from './jobs/api';
import { JobFiles } from './jobs/files';
import { LocalJobSignals, RedisJobSignals } from './jobs/signals';

const log = logger('server');

export interface PeerwayServer {
  config: ServerConfig;
  httpServer: Server;
  /** The express app answering every HTTP request (mounted on httpServer). */
  app: Express;
  store: Store;
  auth: Auth;
  keys: ServerKeys;
  signaling: Signaling;
  /** The admin sign-up link, on a first start with no users. */
  adminInvite: string | null;
  /** Base URL actually listened on (after port 0 resolves). */
  url: string;
  close(): Promise<void>;
}

export interface ServerOptions {
  store?: Store;
  clock?: Clock;
  limits?: Partial<SignalingConfig['limits']>;
  /** Failed sign-in limits (tests: short waits); the limiter reads `clock.now`. */
  signinLimits?: Partial<SigninLimits>;
  hashLimits?: Partial<HashLimits>;
}

/** The SQLite file in a data directory (and its -wal / -shm beside it). */
const SQLITE_FILE = 'peerway.db';

/**
 * The data directory is the server's alone (0700) and the SQLite files in
 * it, which hold the server's signing keys, password hashes and token
 * hashes, are 0600, whatever the umask. The file is made 0600 before SQLite
 * first opens it, since SQLite gives the -wal and -shm files it creates the
 * main file's mode; files of an older install are narrowed here too.
 */
function privateDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const db = join(dataDir, SQLITE_FILE);
  if (!existsSync(db)) closeSync(openSync(db, 'a', 0o600));
  for (const f of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

/** The configured store (Redis with `redisUrl`, else SQLite in `dataDir`), migrated. */
export async function openStore(
  config: Pick<ServerConfig, 'redisUrl' | 'dataDir'>,
): Promise<Store> {
  if (!config.redisUrl) privateDataDir(config.dataDir);
  const store = config.redisUrl ? new RedisStore(config.redisUrl) : new SqliteStore(config.dataDir);
  await store.migrate();
  if (!config.redisUrl) privateDataDir(config.dataDir); // the -wal / -shm SQLite has made now
  return store;
}

/**
 * Starts a server and resolves once it listens: opens the store (SQLite in
 * `config.dataDir`, or Redis with `config.redisUrl`) unless `opts.store` is
 * given, runs migrations, loads or creates the server keys, attaches
 * signaling and the HTTP app, and makes a one-time admin sign-up link when
 * there are no users yet (logged, and returned as `adminInvite`).
 */
export async function startPeerwayServer(
  config: ServerConfig,
  opts: ServerOptions = {},
): Promise<PeerwayServer> {
  if (config.logLevel) setLogLevel(config.logLevel);
  // With --redis-url, instances share one Redis store and route signaling
  // to each other over Redis pub/sub (ws/redis-cluster.ts).
  const store = opts.store ?? (await openStore(config));
  const keys = await loadServerKeys(store);
  const httpServer = createServer();
  // Port 0: learn the real port first, so URLs the server hands out are right.
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  if (config.publicUrlDerived) config = { ...config, port, publicUrl: `http://localhost:${port}` };
  else config = { ...config, port };

  const clock = opts.clock;
  // The jobs broker: agents' job messages go to it, the jobs API acts through it.
  const jobFiles = new JobFiles(config.jobFilesDir, config.jobFilesMaxBytes);
  const jobs = new JobBroker({
    store,
    clock: opts.clock ?? systemClock,
    log: logger('jobs'),
    signals: config.redisUrl
      ? new RedisJobSignals(config.redisUrl, logger('jobs'))
      : new LocalJobSignals(),
    files: jobFiles,
    leaseMs: config.jobLeaseMs,
    retentionMs: config.jobRetentionMs,
    publicUrl: config.publicUrl,
  });
  const auth = new Auth(store, keys, config, {
    ...(clock ? { now: () => clock.now() } : {}),
    ...(opts.signinLimits ? { signinLimits: opts.signinLimits } : {}),
    ...(opts.hashLimits ? { hashLimits: opts.hashLimits } : {}),
  });
  const signaling = attachSignaling(httpServer, {
    config: {
      publicUrl: config.publicUrl,
      baseDomain: config.baseDomain,
      presenceTimeoutMs: config.presenceTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      rescheduleAfterMs: config.rescheduleAfterMs,
      stunUrls: config.stunUrls,
      turnUrls: config.turnUrls,
      turnSecret: config.turnSecret,
      turnCredentialTtlS: config.turnCredentialTtlS,
      limits: { ...DEFAULT_LIMITS, ...opts.limits },
    },
    store,
    logger: logger('signaling'),
    serverKeys: { publicJwk: keys.accessPublicJwk, issuer: config.publicUrl },
    authenticateBearer: (t) => auth.authenticate(t),
    hostAllowed: knownHostCheck(config),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    jobs,
  });
  await signaling.ready;
  await jobs.start();
  jobs.registerMetrics(signaling.metrics.registry);
  // Rows from keys nobody claimed, and expired one-time values, do not pile up.
  const stopPurge = startPurge({
    store,
    clock: opts.clock ?? systemClock,
    log: logger('purge'),
  });
  const turn = new TurnMonitor(
    { turnUrls: config.turnUrls, turnSecret: config.turnSecret, redisUrl: config.redisUrl },
    logger('turn'),
  );
  await turn.start();
  turn.registerMetrics(signaling.metrics.registry);
  new Gauge({
    name: 'peerway_nodes_unhealthy',
    help: 'Nodes that need a look (as on the admin page), by kind: offline, busy, failing',
    labelNames: ['kind'] as const,
    registers: [signaling.metrics.registry],
    collect() {
      this.reset();
      for (const a of signaling.stats().alerts) this.inc({ kind: a.kind });
    },
  });
  const app = createApp({
    store,
    auth,
    keys,
    presence: { ...signaling.presenceView, load: (id) => signaling.load(id) },
    metrics: signaling.metrics.registry,
    config,
    onNodeClaimed: (id) => signaling.onNodeClaimed(id),
    onNodeRemoved: (id) => signaling.onNodeRemoved(id),
    onServiceChanged: (name) => signaling.onServiceChanged(name),
    deployments: signaling.deployments,
    jobs: {
      broker: jobs,
      api: new JobsApi(store, jobs, opts.clock ?? systemClock),
      store,
      files: jobFiles,
    },
    adminStats: async () => {
      const st = signaling.stats();
      return { ...st, turn: { ...st.turn, ...(await turn.status()) } };
    },
  });
  httpServer.on('request', app);
  const adminInvite = await auth.ensureAdminInvite();
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url, publicUrl: config.publicUrl, dataDir: config.dataDir }, 'listening');
  if (adminInvite)
    log.warn({ adminInvite }, 'no users yet: create the admin with this one-time link');

  let closing: Promise<void> | null = null;
  return {
    config,
    httpServer,
    app,
    store,
    auth,
    keys,
    signaling,
    adminInvite,
    url,
    close() {
      closing ??= (async () => {
        stopPurge();
        await jobs.stop();
        await signaling.close();
        await turn.close();
        httpServer.closeAllConnections();
        await new Promise<void>((r) => httpServer.close(() => r()));
        await store.close();
      })();
      return closing;
    },
  };
}

/** The name the design notes use; the same function as `startPeerwayServer`. */
export const createPeerwayServer = startPeerwayServer;
