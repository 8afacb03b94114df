/**
 * `peerway-server`: start the server, or manage users and tokens in its data
 * directory (for automation).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { PeerwayError } from '@peerway/protocol';
import { configFromEnv, parseConfig, type RawServerConfig } from './config';
// The server (express, SQLite, Redis, werift) loads only for the commands that
// use it: --help and --version start without it.
import type { openStore as OpenStore } from './server';
const openStore: typeof OpenStore = async (cfg) => (await import('./server')).openStore(cfg);
import { hashPassword } from './auth/password';
import { Auth } from './auth/auth';
import { loadServerKeys } from './auth/keys';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** This package's version (src/cli.ts and the built dist/cli.js both sit one level under its root). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** The SQLite file a data directory holds once a server or `users create` has used it (server.ts). */
const SQLITE_FILE = 'peerway.db';
/** What `users create` accepts as an email: the same rule as sign-up (auth/auth.ts). */
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

function serverOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--port <n>', 'port to listen on (PORT)'))
    .addOption(new Option('--host <h>', 'address to listen on (PEERWAY_HOST; default 127.0.0.1)'))
    .addOption(new Option('--data-dir <dir>', 'where the SQLite store lives (PEERWAY_DATA_DIR)'))
    .addOption(new Option('--public-url <url>', 'URL browsers and agents use (PEERWAY_PUBLIC_URL)'))
    .addOption(
      new Option(
        '--base-domain <d>',
        'services live at <name>.<base-domain> (PEERWAY_BASE_DOMAIN)',
      ),
    )
    .addOption(
      new Option(
        '--redis-url <url>',
        'shared store and routing for several instances (PEERWAY_REDIS_URL)',
      ),
    )
    .addOption(new Option('--turn-secret <s>', 'coturn static-auth-secret (PEERWAY_TURN_SECRET)'))
    .addOption(
      new Option('--turn-url <url>', 'TURN URL, repeatable (PEERWAY_TURN_URLS)').argParser(collect),
    )
    .addOption(
      new Option('--stun-url <url>', 'STUN URL, repeatable (PEERWAY_STUN_URLS)').argParser(collect),
    )
    .addOption(new Option('--auth-jwks-url <url>', 'external identity provider JWKS URL'))
    .addOption(new Option('--auth-issuer <iss>', 'external identity provider issuer'))
    .addOption(new Option('--auth-audience <aud>', 'external identity provider audience'))
    .addOption(
      new Option('--presence-timeout-ms <ms>', 'offline after this long without a heartbeat'),
    )
    .addOption(new Option('--heartbeat-interval-ms <ms>', 'how often agents heartbeat'))
    .addOption(
      new Option(
        '--reschedule-after <duration>',
        "a node offline this long is lost and its deployments' replicas are placed on other nodes, e.g. 10s (the default), 500ms, 2m",
      ),
    )
    .addOption(
      new Option(
        '--open-signup',
        'let anyone create an account (PEERWAY_OPEN_SIGNUP=true); off by default: accounts come from invites and `users create`',
      ),
    )
    .addOption(
      new Option(
        '--metrics-token <t>',
        '/metrics needs "Authorization: Bearer <t>" (PEERWAY_METRICS_TOKEN; at least 16 characters)',
      ),
    )
    .addOption(
      new Option(
        '--allowed-host <name>',
        "another Host name the gateway answers on, repeatable (PEERWAY_ALLOWED_HOSTS); the public URL's host and loopback always are, other names get 421",
      ).argParser(collect),
    )
    .addOption(
      new Option(
        '--job-lease <duration>',
        "a job's lease lapses this long after its worker's last heartbeat, and the job goes back to the queue (PEERWAY_JOB_LEASE; default 30s)",
      ),
    )
    .addOption(
      new Option(
        '--job-retention <duration>',
        'ended jobs (succeeded, dead, cancelled) and their files are removed this long after they ended, e.g. 7d or 12h; 0 keeps them (PEERWAY_JOB_RETENTION; default 7d)',
      ),
    )
    .addOption(
      new Option(
        '--job-files-dir <dir>',
        "where jobs' files are kept (PEERWAY_JOB_FILES_DIR; default <data-dir>/job-files)",
      ),
    )
    .addOption(
      new Option(
        '--job-files-max <size>',
        "what one job's files may take together, e.g. 256MiB (the default) (PEERWAY_JOB_FILES_MAX)",
      ),
    );
}

/** Reads a duration like `30d` or `12h` as milliseconds. */
function parseDuration(s: string): number {
  const m = /^(\d{1,5})\s*([dh])$/.exec(s.trim());
  if (!m || Number(m[1]) === 0)
    throw new PeerwayError('bad_request', `--expires-in ${s}: say how long, like 30d or 12h`);
  return Number(m[1]) * (m[2] === 'd' ? 24 : 1) * 3600 * 1000;
}

/** The user an --email names, or a clear error. */
async function userByEmail(store: Awaited<ReturnType<typeof openStore>>, email: string) {
  const user = await store.getUserByEmail(email);
  if (!user)
    throw new PeerwayError(
      'not_found',
      `no user ${email}; create it with \`peerway-server users create\``,
    );
  return user;
}

/**
 * Opens the store a data command works on, never an empty one by mistake:
 * SQLite needs a data directory that holds Peerway's database, except that
 * `users create` may start one in a directory named on purpose (--data-dir
 * or PEERWAY_DATA_DIR), for automation that seeds users before the first
 * start. The default (./.peerway-data) is relative to where this runs.
 */
async function openDataStore(opts: Record<string, unknown>, mayStartOne = false) {
  const cfg = config(opts);
  if (!cfg.redisUrl && !existsSync(join(cfg.dataDir, SQLITE_FILE))) {
    const named = opts.dataDir !== undefined || Boolean(process.env.PEERWAY_DATA_DIR);
    if (!(mayStartOne && named))
      throw new PeerwayError(
        'not_found',
        `no Peerway data in ${cfg.dataDir}: ` +
          (named
            ? 'no Peerway server has used that directory; pass the --data-dir your server runs with'
            : 'pass --data-dir DIR, the data directory your server runs with') +
          ' (PEERWAY_DATA_DIR; `npm start` in the repository uses its .peerway-data), or --redis-url URL' +
          (mayStartOne ? `. To start a new store there, name it: --data-dir ${cfg.dataDir}` : ''),
      );
  }
  return { cfg, store: await openStore(cfg) };
}

const when = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

function config(opts: Record<string, unknown>) {
  const env = configFromEnv(process.env);
  const flags: RawServerConfig = {
    port: opts.port as string,
    host: opts.host as string,
    dataDir: opts.dataDir as string,
    publicUrl: opts.publicUrl as string,
    baseDomain: opts.baseDomain as string,
    redisUrl: opts.redisUrl as string,
    turnSecret: opts.turnSecret as string,
    turnUrls: opts.turnUrl as string[],
    stunUrls: opts.stunUrl as string[],
    authJwksUrl: opts.authJwksUrl as string,
    authIssuer: opts.authIssuer as string,
    authAudience: opts.authAudience as string,
    presenceTimeoutMs: opts.presenceTimeoutMs as string,
    heartbeatIntervalMs: opts.heartbeatIntervalMs as string,
    rescheduleAfter: opts.rescheduleAfter as string,
    openSignup: opts.openSignup as boolean | undefined,
    metricsToken: opts.metricsToken as string,
    allowedHosts: opts.allowedHost as string[],
    jobLease: opts.jobLease as string,
    jobRetention: opts.jobRetention as string,
    jobFilesDir: opts.jobFilesDir as string,
    jobFilesMax: opts.jobFilesMax as string,
  };
  const merged = { ...env } as Record<string, unknown>;
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  return parseConfig(merged as RawServerConfig);
}

// Positional: a subcommand's --data-dir belongs to the subcommand, not the server.
const program = new Command('peerway-server')
  .description('Peerway signaling server')
  .version(VERSION, '-V, --version', 'print the version of peerway-server')
  .addHelpText(
    'after',
    '\nInstall: npm install -g @peerway/signaling-server · help on one command: peerway-server <command> --help',
  )
  .enablePositionalOptions();

serverOptions(program).action(async (opts) => {
  const { startPeerwayServer } = await import('./server');
  const server = await startPeerwayServer(config(opts));
  const u = new URL(server.config.publicUrl);
  console.log(`peerway-server listening on ${server.url}`);
  console.log(`Dashboard: ${server.config.publicUrl}/`);
  console.log(
    `Services:  ${u.protocol}//<service>.${server.config.baseDomain}:${u.port || (u.protocol === 'https:' ? 443 : 80)}/`,
  );
  if (server.adminInvite) {
    console.log(
      `\nFirst start: create the admin account here (one-time link):\n  ${server.adminInvite}\n`,
    );
  }
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});

const users = program
  .command('users')
  .description('manage users in the store (the data directory, or Redis with --redis-url)');
serverOptions(users.command('create'))
  .requiredOption('--email <email>')
  .requiredOption('--password <password>')
  .option('--admin', 'make an admin', false)
  .action(async (opts) => {
    if (!EMAIL_RE.test(opts.email as string) || (opts.email as string).length > 320)
      throw new PeerwayError(
        'bad_request',
        `--email ${opts.email}: not an email address (like name@example.com)`,
      );
    if ((opts.password as string).length < 8)
      throw new PeerwayError('bad_request', 'the password must be at least 8 characters');
    const { store } = await openDataStore(opts, true);
    const u = await store.createUser({
      email: opts.email,
      passwordHash: await hashPassword(opts.password),
      isAdmin: Boolean(opts.admin),
      externalSubject: null,
    });
    console.log(u.id);
    await store.close();
  });

const tokens = program.command('tokens').description('manage personal access tokens');
serverOptions(tokens.command('create'))
  .description('make a personal access token (printed once)')
  .requiredOption('--email <email>')
  .option('--name <name>', 'a label for the token', 'cli')
  .option('--expires-in <duration>', 'the token stops working after this long, e.g. 30d or 12h')
  .action(async (opts) => {
    const expiresInMs = opts.expiresIn ? parseDuration(opts.expiresIn as string) : undefined;
    const { cfg, store } = await openDataStore(opts);
    const user = await userByEmail(store, opts.email);
    const auth = new Auth(store, await loadServerKeys(store), cfg);
    const t = await auth.createAccessToken(user.id, opts.name, expiresInMs);
    console.log(t.token);
    await store.close();
  });
serverOptions(tokens.command('list'))
  .description("a user's personal access tokens (never their secrets)")
  .requiredOption('--email <email>')
  .option('--json', 'as JSON')
  .action(async (opts) => {
    const { store } = await openDataStore(opts);
    const user = await userByEmail(store, opts.email);
    const list = await store.listAccessTokens(user.id);
    if (opts.json) console.log(JSON.stringify(list.map(({ tokenHash: _h, ...t }) => t)));
    else {
      console.log(['ID', 'NAME', 'CREATED', 'LAST USED', 'EXPIRES'].join('\t'));
      for (const t of list)
        console.log(
          [t.id, t.name, when(t.createdAt), when(t.lastUsedAt), when(t.expiresAt)].join('\t'),
        );
    }
    await store.close();
  });
serverOptions(tokens.command('revoke'))
  .description('revoke a personal access token by its ID (see `tokens list`)')
  .argument('<id>')
  .requiredOption('--email <email>')
  .action(async (id: string, opts) => {
    const { store } = await openDataStore(opts);
    const user = await userByEmail(store, opts.email);
    const gone = await store.deleteAccessToken(user.id, id);
    await store.close();
    if (!gone) throw new PeerwayError('not_found', `${opts.email} has no token ${id}`);
    console.log(`revoked ${id}`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`peerway-server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
