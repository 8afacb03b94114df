/**
 * `peerway-server`: start the server, or manage users and tokens in its data
 * directory (for automation).
 */
import { Command, Option } from 'commander';
import { PeerwayError } from '@peerway/protocol';
import { configFromEnv, parseConfig, type RawServerConfig } from './config';
import { openStore, startPeerwayServer } from './server';
import { hashPassword } from './auth/password';
import { Auth } from './auth/auth';
import { loadServerKeys } from './auth/keys';

const collect = (v: string, prev: string[] = []) => [...prev, v];

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
    .addOption(new Option('--heartbeat-interval-ms <ms>', 'how often agents heartbeat'));
}

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
  };
  const merged = { ...env } as Record<string, unknown>;
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  return parseConfig(merged as RawServerConfig);
}

// Positional: a subcommand's --data-dir belongs to the subcommand, not the server.
const program = new Command('peerway-server')
  .description('Peerway signaling server')
  .enablePositionalOptions();

serverOptions(program).action(async (opts) => {
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
    const cfg = config(opts);
    const store = await openStore(cfg);
    if ((opts.password as string).length < 8)
      throw new PeerwayError('bad_request', 'the password must be at least 8 characters');
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
  .requiredOption('--email <email>')
  .option('--name <name>', 'a label for the token', 'cli')
  .action(async (opts) => {
    const cfg = config(opts);
    const store = await openStore(cfg);
    const user = await store.getUserByEmail(opts.email);
    if (!user)
      throw new PeerwayError(
        'not_found',
        `no user ${opts.email}; create it with \`peerway-server users create\``,
      );
    const auth = new Auth(store, await loadServerKeys(store), cfg);
    const t = await auth.createAccessToken(user.id, opts.name);
    console.log(t.token);
    await store.close();
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`peerway-server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
