/**
 * `peerway-agent`: run a node at home. Human output goes to stdout; logs
 * (pino, JSON) to stderr.
 */
import { Command } from 'commander';
import pino from 'pino';
import qrcode from 'qrcode-terminal';
import { selectEngines } from './engine';
import { PeerwayError } from '@peerway/protocol';
import { createClaimToken } from '@peerway/protocol/node';
import { Agent } from './agent';
import {
  homeDir,
  loadConfig,
  loadOrCreateIdentity,
  parseServiceFlag,
  saveConfig,
  serviceUrl,
  type AgentConfig,
} from './home';

const log = pino(
  { level: process.env.PEERWAY_LOG_LEVEL ?? 'info', base: { app: 'peerway-agent' } },
  pino.destination(2),
);

/** How long `status` waits for the server, in ms. */
const STATUS_TIMEOUT_MS = 5000;

function needServer(cfg: AgentConfig, flag?: string): string {
  const s = flag ?? cfg.server;
  if (!s)
    throw new PeerwayError(
      'bad_request',
      'no server: run `peerway-agent init --server URL` or pass --server',
    );
  return s.replace(/\/+$/, '');
}

const program = new Command('peerway-agent').description(
  'Expose web services on this machine through Peerway',
);

program
  .command('init')
  .description('set the server and the node name; makes the node identity')
  .requiredOption('--server <url>', 'the Peerway server, e.g. https://peerway.example')
  .option('--name <name>', 'a name for this node')
  .action((opts: { server: string; name?: string }) => {
    const cfg = loadConfig();
    new URL(opts.server);
    saveConfig({ ...cfg, server: opts.server, ...(opts.name ? { name: opts.name } : {}) });
    const id = loadOrCreateIdentity();
    console.log(`Node ${id.shortId} configured for ${opts.server} (home: ${homeDir()})`);
  });

program
  .command('login <token>')
  .description('claim this node for the account the access token belongs to')
  .action((token: string) => {
    saveConfig({ ...loadConfig(), token });
    console.log(
      'Token saved. The node is claimed for that account when it next connects (`peerway-agent run`).',
    );
  });

program
  .command('expose <name> <target>')
  .description(
    'declare a service: NAME becomes <name>.<base-domain>, TARGET is a port, host:port or URL on this side',
  )
  .option('--public', 'anyone with the URL may open it', false)
  .action((name: string, target: string, opts: { public: boolean }) => {
    const svc = parseServiceFlag(`${name}=${target}${opts.public ? ',public' : ''}`);
    const cfg = loadConfig();
    saveConfig({ ...cfg, services: [...cfg.services.filter((s) => s.name !== svc.name), svc] });
    console.log(`Service ${svc.name} → ${svc.target}${svc.public ? ' (public)' : ''}`);
  });

program
  .command('claim-url')
  .description('print a fresh claim URL for this node')
  .option('--server <url>')
  .action((opts: { server?: string }) => {
    const cfg = loadConfig();
    const id = loadOrCreateIdentity();
    console.log(
      `${needServer(cfg, opts.server)}/add-node#claim=${createClaimToken(id, cfg.name, Date.now())}`,
    );
  });

program
  .command('status')
  .description('show this node: short ID, server, services, and whether it is claimed')
  .action(async () => {
    const cfg = loadConfig();
    const id = loadOrCreateIdentity();
    console.log(`node      ${id.shortId}  (${cfg.name})`);
    console.log(`home      ${homeDir()}`);
    console.log(`server    ${cfg.server ?? '(none: run init)'}`);
    console.log(`logged in ${cfg.token ? 'yes' : 'no'}`);
    for (const s of cfg.services)
      console.log(`service   ${s.name} → ${s.target}${s.public ? ' (public)' : ''}`);
    if (!cfg.server) return;
    const server = cfg.server.replace(/\/+$/, '');
    const getJson = (path: string, token?: string) =>
      fetch(new URL(path, server), {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
      })
        .then(async (r) => (r.ok ? ((await r.json()) as unknown) : null))
        .catch(() => null);
    // claim-info answers for any node-signed claim token: no account needed
    const claimToken = createClaimToken(id, cfg.name, Date.now());
    const info = (await getJson(
      `/api/nodes/claim-info?token=${encodeURIComponent(claimToken)}`,
    )) as { claimed?: boolean } | null;
    console.log(`reachable ${info ? 'yes' : 'no'}`);
    if (!info) return;
    console.log(
      `claimed   ${info.claimed ? 'yes' : `no — open ${server}/add-node#claim=${claimToken}`}`,
    );
    if (!cfg.token) return;
    const mine = (await getJson('/api/nodes', cfg.token)) as {
      nodes?: { id: string; online: boolean; services: { name: string; url: string }[] }[];
    } | null;
    const node = mine?.nodes?.find((n) => n.id === id.nodeId);
    if (!node) return;
    console.log(`online    ${node.online ? 'yes' : 'no'}`);
    for (const s of node.services) console.log(`url       ${s.name}: ${s.url}`);
  });

/** How long a SIGTERM lets open sessions go on before the agent stops. */
const DEFAULT_DRAIN_TIMEOUT_S = 30;

program
  .command('run')
  .description('connect and serve (reconnects forever)')
  .option('--server <url>')
  .option('--token <token>')
  .option('--name <name>')
  .option(
    '--engine <engine>',
    'WebRTC engine: auto (the default: node-datachannel, native and faster, and werift for clients that reach TURN only over TCP), werift (pure TypeScript only) or node-datachannel (only); also PEERWAY_ENGINE',
  )
  .option('--qr', 'print the claim QR code even when stdout is not a terminal')
  .option(
    '--drain-timeout <seconds>',
    'on SIGTERM, how long open sessions may go on before the agent stops',
    String(DEFAULT_DRAIN_TIMEOUT_S),
  )
  .option(
    '--service <NAME=TARGET[,public][,timeoutMs=N]>',
    'a service, repeatable',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .action(
    (opts: {
      server?: string;
      token?: string;
      name?: string;
      qr?: boolean;
      drainTimeout?: string;
      engine?: string;
      service?: string[];
    }) => {
      const cfg = loadConfig();
      const server = needServer(cfg, opts.server);
      const services = opts.service ? opts.service.map(parseServiceFlag) : cfg.services;
      if (services.length === 0)
        console.log(
          'No services declared: add one with --service NAME=TARGET or `peerway-agent expose`.',
        );
      const identity = loadOrCreateIdentity();
      const name = opts.name ?? cfg.name;
      const engines = selectEngines(opts.engine ?? process.env.PEERWAY_ENGINE, log);
      console.log(
        `Node ${identity.shortId} (${name}): connecting to ${server}… (WebRTC engine: ${engines[0]!.name}${engines.length > 1 ? ', and werift for clients that reach TURN only over TCP' : ''})`,
      );
      const agent = new Agent({
        engines,
        serverUrl: server,
        identity,
        name,
        token: opts.token ?? cfg.token,
        services,
        log,
        onWelcome: (w) => {
          console.log(
            `Connected to ${server} as node ${w.shortId} (${name})${w.claimed ? `, owned by ${w.owner}` : ''}`,
          );
          if (!w.claimed && w.claimUrl) {
            console.log(
              `\nThis node is not claimed yet. Open this link signed in to claim it:\n  ${w.shortClaimUrl ?? w.claimUrl}\n  (full link: ${w.claimUrl})`,
            );
            if (process.stdout.isTTY || opts.qr)
              qrcode.generate(w.shortClaimUrl ?? w.claimUrl, { small: true });
          }
        },
        onServices: (list) => {
          for (const s of list) {
            const svc = services.find((x) => x.name === s.name);
            console.log(
              s.accepted
                ? `  ✓ ${s.url ?? serviceUrl(server, s.name)}  →  ${svc?.target}`
                : `  ✗ ${s.name}: ${s.reason}`,
            );
          }
        },
        onClaimed: (owner) => console.log(`Claimed by ${owner}.`),
        onRemoved: () => {
          console.error(
            'This node was removed by its owner. To add it back, claim it again (`peerway-agent claim-url`, or run with a fresh --token) and start the agent again.',
          );
          process.exit(3);
        },
      });
      agent.start();
      const stop = () => {
        agent.stop();
        process.exit(0);
      };
      // SIGTERM (a service manager stopping us) drains first: no new
      // sessions, open ones may finish for up to --drain-timeout. A second
      // signal, or Ctrl-C, stops at once.
      process.on('SIGINT', stop);
      process.on('SIGTERM', () => {
        if (agent.isDraining) return stop();
        const timeoutS = Number(opts.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT_S);
        console.log(
          `Draining: no new sessions; ${agent.activeSessions} open, stopping when they end (at most ${timeoutS} s; signal again to stop now).`,
        );
        void agent.drain(timeoutS * 1000).then(({ left }) => {
          console.log(left ? `Drain timeout: closing ${left} sessions.` : 'Drained.');
          stop();
        });
      });
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`peerway-agent: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
