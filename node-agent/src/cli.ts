/**
 * `peerway-agent`: run a node at home. Human output goes to stdout; logs
 * (pino, JSON) to stderr.
 */
import { Command } from 'commander';
import pino from 'pino';
import qrcode from 'qrcode-terminal';
import { join } from 'node:path';
import { PeerwayError } from '@peerway/protocol';
import { createClaimToken } from '@peerway/protocol/node';
// The agent and its WebRTC engines (werift, node-datachannel) load only for
// `run`: every other command, and --help, starts without them.
import type { Agent } from './agent';
import {
  homeDir,
  loadConfig,
  loadOrCreateIdentity,
  parseExpose,
  parseServerUrl,
  parseServiceFlag,
  salvageConfig,
  saveConfig,
  serviceUrl,
  type AgentConfig,
} from './home';
import { AGENT_VERSION } from './version';
import { ConnectionReporter } from './connection-report';
import { RECONNECT_CAP_MS } from './policy';
import { UPSTREAM_RECHECK_MS } from './upstream-health';
import { clearRunState, readRunState, writeRunState, type RunState } from './run-state';
import { checkTokenForm, claimInfo, claimNode, myNodes, whoAmI } from './server-api';
import {
  deploySettings,
  describeDeploySettings,
  parseLabelFlags,
  type DeployFlags,
} from './deploy/settings';
import { clearRunDeploy, readRunDeploy, writeRunDeploy } from './deploy/run-settings';
import { describeJobSettings, jobSettings, type JobFlags } from './jobs/settings';

const log = pino(
  {
    // In a terminal the agent says what happens in words on stdout, so its JSON
    // log shows only warnings there; piped (a service manager, a file) it logs info.
    level: process.env.PEERWAY_LOG_LEVEL || (process.stderr.isTTY ? 'warn' : 'info'),
    base: { app: 'peerway-agent' },
  },
  pino.destination(2),
);

/** The server a command talks to: its --server flag (checked here) or the saved one. */
function needServer(cfg: AgentConfig, flag?: string): string {
  if (flag) return parseServerUrl(flag);
  if (!cfg.server)
    throw new PeerwayError(
      'bad_request',
      'no server: run `peerway-agent init --server URL` or pass --server',
    );
  return cfg.server;
}

const LOGIN_AGAIN = 'get a new one from the dashboard and run `peerway-agent login TOKEN`';

const program = new Command('peerway-agent')
  .description('Expose web services on this machine through Peerway')
  .version(AGENT_VERSION, '-V, --version', 'print the version of peerway-agent')
  .addHelpText(
    'after',
    '\nInstall: npm install -g @peerway/node-agent · help on one command: peerway-agent <command> --help',
  );

program
  .command('init')
  .description('set the server and the node name; makes the node identity')
  .requiredOption('--server <url>', 'the Peerway server, e.g. https://peerway.example')
  .option('--name <name>', 'a name for this node')
  .action((opts: { server: string; name?: string }) => {
    // Checked before anything is written; a broken config.json does not stop init.
    const server = parseServerUrl(opts.server);
    if (opts.name !== undefined && (opts.name.length < 1 || opts.name.length > 64))
      throw new PeerwayError('bad_request', '--name: a node name has 1 to 64 characters');
    const { config, dropped, backup } = salvageConfig();
    saveConfig({ ...config, server, ...(opts.name ? { name: opts.name } : {}) });
    if (backup)
      console.log(
        `${join(homeDir(), 'config.json')} was broken; a copy of it is in ${backup}. Rewritten without: ${dropped.join('; ')}`,
      );
    const id = loadOrCreateIdentity();
    console.log(`Node ${id.shortId} configured for ${server} (home: ${homeDir()})`);
  });

program
  .command('login <token>')
  .description(
    'claim this node for the account the access token belongs to (checked with the server when one is set)',
  )
  .action(async (token: string) => {
    checkTokenForm(token);
    const cfg = loadConfig();
    if (!cfg.server) {
      saveConfig({ ...cfg, token });
      console.log(
        'Token saved (not checked: no server set). The node is claimed for its account when it next connects; set the server with `peerway-agent init --server URL`.',
      );
      return;
    }
    const server = cfg.server;
    const notChecked = (why: string) => {
      saveConfig({ ...cfg, token });
      console.log(
        `Token saved, but not checked: cannot reach ${server} (${why}). The node is claimed for its account when it next connects (\`peerway-agent run\`).`,
      );
    };
    const who = await whoAmI(server, token);
    if ('unreachable' in who) return notChecked(who.unreachable);
    if (!who.ok)
      throw new PeerwayError(
        'unauthorized',
        `token rejected by ${server}: ${who.rejected}; ${LOGIN_AGAIN}. Nothing was saved.`,
      );
    // Claimed now, not at the next connection: `status` and the dashboard show it at once.
    const id = loadOrCreateIdentity();
    const claim = await claimNode(server, token, createClaimToken(id, cfg.name, Date.now()));
    if ('unreachable' in claim) return notChecked(claim.unreachable);
    if (!claim.ok)
      throw new PeerwayError(
        'conflict',
        `${server} did not claim node ${id.shortId} for ${who.email}: ${claim.refused}. Nothing was saved.`,
      );
    saveConfig({ ...cfg, token });
    console.log(
      `Logged in as ${who.email}: node ${id.shortId} (${cfg.name}) is ${claim.alreadyYours ? 'already' : 'now'} claimed for that account. Serve its services with \`peerway-agent run\`.`,
    );
  });

program
  .command('expose <name> <target>')
  .description(
    'declare a service: NAME becomes <name>.<base-domain>, TARGET is a port, host:port or URL on this side',
  )
  .option('--public', 'anyone with the URL may open it', false)
  .action((name: string, target: string, opts: { public: boolean }) => {
    const svc = parseExpose(name, target, opts.public);
    const cfg = loadConfig();
    saveConfig({ ...cfg, services: [...cfg.services.filter((s) => s.name !== svc.name), svc] });
    console.log(`Service ${svc.name} → ${svc.target}${svc.public ? ' (public)' : ''}`);
    const running = readRunState();
    if (running)
      console.log(
        `The agent running now (pid ${running.pid}) serves what it was started with: restart \`peerway-agent run\` to serve ${svc.name}.`,
      );
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
  .description(
    'show this node: short ID, server, services, and what the server says of it (claimed, online, URLs)',
  )
  .action(async () => {
    const cfg = loadConfig();
    const id = loadOrCreateIdentity();
    // A running agent may serve what flags said, not config.json: both are shown.
    const running = readRunState();
    const server = cfg.server ?? running?.server;
    const token = cfg.token ?? running?.token;
    console.log(`node      ${id.shortId}  (${running?.name ?? cfg.name})`);
    console.log(`home      ${homeDir()}`);
    console.log(
      `server    ${server ?? '(none: run init)'}${!cfg.server && running ? "  (the running agent's --server)" : ''}`,
    );
    console.log(
      `running   ${running ? `yes, pid ${running.pid}, ${running.connected ? 'connected' : 'not connected'}` : 'no'}`,
    );
    for (const s of cfg.services) {
      const served = running?.services.find((r) => r.name === s.name);
      const note = !running
        ? ''
        : !served
          ? '  (not served by the running agent: restart `peerway-agent run`)'
          : served.target !== s.target
            ? `  (the running agent serves ${served.target}: restart \`peerway-agent run\`)`
            : '';
      console.log(`service   ${s.name} → ${s.target}${s.public ? ' (public)' : ''}${note}`);
    }
    for (const r of running?.services ?? [])
      if (!cfg.services.some((s) => s.name === r.name))
        console.log(
          `service   ${r.name} → ${r.target}${r.public ? ' (public)' : ''}  (the running agent's --service)`,
        );
    // deployments: what the running agent uses, else what config.json says
    const runningDeploy = readRunDeploy(homeDir());
    const [onOff, labels, registries] = describeDeploySettings(
      runningDeploy ?? deploySettings(cfg),
    );
    console.log(`deploy    ${onOff}${runningDeploy ? '' : '  (config.json)'}`);
    console.log(`          ${labels}`);
    console.log(`          ${registries}`);
    if (runningDeploy?.runtime) console.log(`          runtime ${runningDeploy.runtime}`);
    if (!token) console.log('logged in no');
    if (!server) return;
    // claim-info answers for any node-signed claim token: no account needed
    const claimToken = createClaimToken(id, cfg.name, Date.now());
    const info = await claimInfo(server, claimToken);
    console.log(`reachable ${info ? 'yes' : 'no'}`);
    if (!info) {
      if (token) console.log('logged in yes (not checked: the server is not reachable)');
      return;
    }
    if (token) {
      const who = await whoAmI(server, token);
      console.log(
        `logged in ${who.ok ? `yes, as ${who.email}` : 'rejected' in who ? `no: token rejected: ${who.rejected}; ${LOGIN_AGAIN}` : `yes (not checked: ${who.unreachable})`}`,
      );
    }
    console.log(
      `claimed   ${info.claimed ? 'yes' : `no — open ${server}/add-node#claim=${claimToken}`}`,
    );
    if (!token) return;
    const node = (await myNodes(server, token))?.find((n) => n.id === id.nodeId);
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
  .option(
    '--deployments',
    'run the containers the server assigns to this node (the cluster); without it, none',
  )
  .option('--deploy-cpu <cores>', 'at most this many CPU cores for deployments (2, 0.5, 500m)')
  .option('--deploy-memory <size>', 'at most this much memory for deployments (4GiB, 512MiB)')
  .option(
    '--label <key=value>',
    'a label of this node that deployments and jobs can ask for (region=home), repeatable',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .option(
    '--registry <host>',
    'a registry images may be pulled from (registry.example, 127.0.0.1:5000), repeatable; no other',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .option(
    '--container-label <key=value>',
    'one more label on every container this node runs, repeatable',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .option('--jobs', 'take jobs from the server (a worker); without it, none')
  .option('--job-concurrency <n>', 'jobs run at once (default 1, or jobs.concurrency)')
  .option(
    '--connector <name[=value]>',
    'a connector jobs run with, repeatable: simulation, http=SERVICE[,SERVICE], comfyui=URL, container=IMAGE[,IMAGE] (registry/name:* for any tag); without it, those in config.json',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .action(
    async (
      opts: {
        server?: string;
        token?: string;
        name?: string;
        qr?: boolean;
        drainTimeout?: string;
        engine?: string;
        service?: string[];
        containerLabel?: string[];
      } & DeployFlags &
        JobFlags,
    ) => {
      const cfg = loadConfig();
      const server = needServer(cfg, opts.server);
      const token = opts.token ?? cfg.token;
      if (opts.token) checkTokenForm(opts.token);
      const services = opts.service ? opts.service.map(parseServiceFlag) : cfg.services;
      const deploy = deploySettings(cfg, opts);
      const jobs = jobSettings(cfg, opts);
      const containerLabels = parseLabelFlags(opts.containerLabel ?? [], '--container-label');
      for (const k of Object.keys(containerLabels))
        if (['peerway.node', 'peerway.deployment', 'peerway.allocation'].includes(k))
          throw new PeerwayError(
            'bad_request',
            `--container-label ${k}: the agent sets ${k} itself; choose another name`,
          );
      if (services.length === 0 && !deploy.enabled)
        console.log(
          'No services declared: add one with --service NAME=TARGET or `peerway-agent expose`.',
        );
      const identity = loadOrCreateIdentity();
      const name = opts.name ?? cfg.name;
      const [{ Agent }, { selectEngines }, { DeployNode }, jobsModule] = await Promise.all([
        import('./agent'),
        import('./engine'),
        import('./deploy'),
        import('./jobs'),
      ]);
      let agent: Agent | null = null as Agent | null;
      const deployNode = await DeployNode.open({
        settings: deploy,
        stateDir: homeDir(),
        node: identity.shortId,
        ...(Object.keys(containerLabels).length ? { extraLabels: containerLabels } : {}),
        agent: () =>
          agent && {
            send: (m) => agent?.conn.send(m),
            serveDeployments: (list) => agent?.serveDeployments(list),
          },
        log,
      });
      const detection = deployNode.runtime.detection;
      const runtimeWords = detection.ok
        ? `${detection.runtime.name} ${detection.runtime.version} at ${deployNode.runtime.where}`
        : detection.reason;
      if (deploy.enabled) {
        console.log(`Deployments: ${describeDeploySettings(deploy).join('; ')}`);
        console.log(
          detection.ok
            ? `  container runtime: ${runtimeWords}`
            : `  ✗ ${runtimeWords}: this node refuses every replica until a container engine runs (Podman or Docker)`,
        );
      }
      const jobsNode = jobs.enabled
        ? await jobsModule.openJobsNode({
            settings: jobs,
            services,
            serverUrl: server,
            node: identity.shortId,
            stateDir: homeDir(),
            send: (m) => agent?.conn.send(m),
            resources: () => deployNode.reporter.current,
            log,
          })
        : null;
      if (jobs.enabled) console.log(`Jobs: ${describeJobSettings(jobs)}`);
      try {
        writeRunDeploy(homeDir(), deploy, runtimeWords);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not write run-deploy.json');
      }
      process.on('exit', () => clearRunDeploy(homeDir()));
      const engines = selectEngines(opts.engine ?? process.env.PEERWAY_ENGINE, log);
      console.log(
        `Node ${identity.shortId} (${name}): connecting to ${server}… (WebRTC engine: ${engines[0]!.name}${engines.length > 1 ? ', and werift for clients that reach TURN only over TCP' : ''})`,
      );
      // What `status` reads while this runs (flags included).
      let state: RunState = {
        pid: process.pid,
        startedAt: Date.now(),
        server,
        name,
        ...(token ? { token } : {}),
        services: services.map((s) => ({ name: s.name, target: s.target, public: s.public })),
        connected: false,
      };
      const record = (change: Partial<RunState>) => {
        state = { ...state, ...change };
        try {
          writeRunState(state);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'could not write run.json');
        }
      };
      record({});
      process.on('exit', () => clearRunState());

      const reporter = new ConnectionReporter(server, console.log, RECONNECT_CAP_MS / 1000);
      /** The server's last word on each service: routable, and at which URL. */
      const routable = new Map<string, string>();
      const target = (svc: string) =>
        services.find((x) => x.name === svc)?.target ?? 'a container of this node (deployment)';
      const recheckS = UPSTREAM_RECHECK_MS / 1000;
      const toldErrors = new Set<string>();
      const running: Agent = new Agent({
        engines,
        serverUrl: server,
        identity,
        name,
        token,
        services,
        log,
        onConnection: (e) => {
          reporter.on(e);
          if (e.state === 'down' && state.connected) record({ connected: false });
        },
        onServerError: (code, message) => {
          if (toldErrors.has(message)) return;
          toldErrors.add(message);
          if (code === 'unauthorized')
            console.log(
              `Token rejected: ${message.split(';')[0]}; ${LOGIN_AGAIN} (or start with a new --token).`,
            );
          else if (code === 'conflict') console.log(`Not claimed: ${message}.`);
          else console.log(`The server says: ${message}`);
        },
        onUpstream: (svc, up, first) => {
          if (first) {
            if (!up.up)
              console.log(
                `  ✗ ${svc} → ${target(svc)} is not reachable (${up.reason}): start it on this machine; the node checks again every ${recheckS} s and serves it once it answers`,
              );
            return;
          }
          const url = routable.get(svc);
          if (up.up)
            console.log(
              url
                ? `  ✓ ${url}  →  ${target(svc)} answers again`
                : `  ${svc} → ${target(svc)} answers again`,
            );
          else
            console.log(
              `  ✗ ${svc} → ${target(svc)} stopped answering (${up.reason}): visitors get a "service is down" page until it answers again`,
            );
        },
        onAllocations: (list) => void deployNode.allocations(list),
        ...(jobsNode ? { jobs: jobsNode } : {}),
        onWelcome: (w) => {
          void deployNode.connected();
          const away = reporter.connected();
          record({
            connected: true,
            claimed: w.claimed,
            ...(w.owner ? { owner: w.owner } : {}),
          });
          console.log(
            `Connected to ${server}${away === null ? '' : ` again (after ${away} s away)`} as node ${w.shortId} (${name})${w.claimed ? `, owned by ${w.owner}` : ''}`,
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
          // After the first check of each upstream: a ✓ means routable and answering.
          void running.health.ready.then(() => {
            for (const s of list) {
              const url = s.url ?? serviceUrl(server, s.name);
              if (s.accepted) routable.set(s.name, url);
              else routable.delete(s.name);
              const up = running.health.state(s.name);
              console.log(
                !s.accepted
                  ? `  ✗ ${s.name}: ${s.reason}`
                  : up && !up.up
                    ? `  ✗ ${url}  →  ${target(s.name)} is not reachable (${up.reason}): visitors get a "service is down" page until it answers`
                    : `  ✓ ${url}  →  ${target(s.name)}`,
              );
            }
          });
        },
        onClaimed: (owner) => {
          record({ claimed: true, owner });
          console.log(`Claimed by ${owner}.`);
        },
        onRemoved: () => {
          console.error(
            'This node was removed by its owner. To add it back, claim it again (`peerway-agent claim-url`, or run with a fresh --token) and start the agent again.',
          );
          process.exit(3);
        },
      });
      agent = running;
      running.start();
      const stop = () => {
        running.stop();
        process.exit(0);
      };
      // SIGTERM (a service manager stopping us) drains first: no new
      // sessions, open ones may finish for up to --drain-timeout. A second
      // signal, or Ctrl-C, stops at once.
      process.on('SIGINT', stop);
      process.on('SIGTERM', () => {
        if (running.isDraining) return stop();
        const timeoutS = Number(opts.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT_S);
        const replicas = deployNode.replicas;
        console.log(
          `Draining: no new sessions; ${running.activeSessions} open, stopping when they end` +
            (replicas > 0
              ? `; ${replicas} replica${replicas === 1 ? '' : 's'} moving to other nodes first`
              : '') +
            ` (at most ${timeoutS} s; signal again to stop now).`,
        );
        // Sessions end, and the server replaces this node's replicas
        // elsewhere before it stops them here (make before break).
        void Promise.all([
          running.drain(timeoutS * 1000),
          deployNode.whenEmpty(timeoutS * 1000),
        ]).then(([{ left }, kept]) => {
          const why = [
            left ? `closing ${left} sessions` : '',
            kept
              ? `${kept} replicas could not move (their containers stay; the server places them elsewhere once this node is lost)`
              : '',
          ].filter(Boolean);
          console.log(why.length ? `Drain timeout: ${why.join('; ')}.` : 'Drained.');
          stop();
        });
      });
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`peerway-agent: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
