/**
 * `peerway`: a cluster owner's command line against the server's API —
 * `login`, `nodes`, `deploy FILE [--dry-run]`, `deployments`, `deployment
 * NAME`, `undeploy NAME`, and `jobs` (submit, list, show, cancel, retry:
 * ./jobs.ts); each takes `--json` (the API's answer as it is).
 * The server and token come from `peerway login` (saved in
 * $PEERWAY_HOME/cli.json, mode 0600), or PEERWAY_SERVER and PEERWAY_TOKEN.
 * Its own package (@peerway/cli): a laptop that deploys needs none of the
 * agent's WebRTC engines.
 */
import { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PeerwayError, formatBytes, formatCpu, parseServerUrl } from '@peerway/protocol';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { jobsCommand } from './jobs';

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
/** Where `login` keeps the server and token: the agent's home (PEERWAY_HOME, ~/.peerway). */
const homeDir = () => process.env.PEERWAY_HOME || join(homedir(), '.peerway');

interface Login {
  server: string;
  token: string;
}

class CliError extends Error {}

const loginFile = () => join(homeDir(), 'cli.json');

function login(): Login {
  const env = process.env;
  let saved: Partial<Login> = {};
  if (existsSync(loginFile())) {
    try {
      saved = JSON.parse(readFileSync(loginFile(), 'utf8')) as Partial<Login>;
    } catch {
      throw new CliError(
        `${loginFile()} is not JSON: run \`peerway login --server URL --token TOKEN\` again`,
      );
    }
  }
  const server = env.PEERWAY_SERVER || saved.server; // an empty variable is no setting
  const token = env.PEERWAY_TOKEN || saved.token;
  if (!server || !token)
    throw new CliError(
      'not logged in: run `peerway login --server URL --token TOKEN` (a token from the dashboard’s Tokens page), or set PEERWAY_SERVER and PEERWAY_TOKEN',
    );
  return { server: server.replace(/\/+$/, ''), token };
}

/** One API call; a refusal becomes the server's own message. */
async function api<T>(
  method: string,
  path: string,
  body?: { text: string; type: string },
  who: Login = login(),
): Promise<{ status: number; json: T }> {
  let res: Response;
  try {
    res = await fetch(`${who.server}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${who.token}`,
        ...(body ? { 'content-type': body.type } : {}),
      },
      ...(body ? { body: body.text } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach ${who.server}: ${cause}`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new CliError(`${who.server} answered ${res.status} with something that is not JSON`);
  }
  if (res.status === 401)
    throw new CliError(
      'token rejected: get a new one from the dashboard and run `peerway login` again',
    );
  if (res.status >= 400 && res.status !== 400) {
    const msg = (json as { error?: { message?: string } } | null)?.error?.message;
    throw new CliError(msg ?? `${method} ${path}: ${res.status}`);
  }
  return { status: res.status, json: json as T };
}

const print = (opts: { json?: boolean }, json: unknown, human: () => string[]) =>
  console.log(opts.json ? JSON.stringify(json, null, 2) : human().join('\n'));

/** A fixed-width table (the first row is the header). */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

interface NodeJson {
  shortId: string;
  name: string;
  online: boolean;
  deployments: boolean;
  runtime: { name: string; version: string } | null;
  labels: Record<string, string>;
  deployable: { cpuMillis: number; memoryBytes: number; gpu: number } | null;
  allocated: { cpuMillis: number; memoryBytes: number; gpu: number };
}
interface ReplicaJson {
  id: string | null;
  node: string | null;
  state: string;
  reason?: string;
  since: number;
}
interface DeploymentJson {
  name: string;
  url: string;
  desired: number;
  running: number;
  replicas: ReplicaJson[];
  events?: { at: number; kind: string; message: string }[];
}

const program = new Command('peerway')
  .description('Deploy containers and submit jobs to your Peerway nodes, and see what runs where')
  .version(VERSION, '-V, --version', 'print the version')
  .addHelpText(
    'after',
    '\nInstall: npm install -g @peerway/cli · help on one command: peerway <command> --help',
  );

program
  .command('login')
  .description('save the server and an access token (checked with the server first)')
  .requiredOption('--server <url>', 'the Peerway server, e.g. https://peerway.example')
  .requiredOption('--token <token>', 'an access token from the dashboard’s Tokens page')
  .action(async (opts: { server: string; token: string }) => {
    const who = { server: parseServerUrl(opts.server).replace(/\/+$/, ''), token: opts.token };
    const me = await api<{ user: { email: string } }>('GET', '/api/me', undefined, who);
    mkdirSync(homeDir(), { recursive: true });
    writeFileSync(loginFile(), JSON.stringify(who, null, 2) + '\n', { mode: 0o600 });
    chmodSync(loginFile(), 0o600);
    console.log(`Logged in to ${who.server} as ${me.json.user.email} (saved in ${loginFile()})`);
  });

program
  .command('nodes')
  .description('your nodes: online, resources, what is allocated, container runtime, labels')
  .option('--json', 'the API’s answer as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { json } = await api<{ nodes: NodeJson[] }>('GET', '/api/nodes');
    print(opts, json, () =>
      json.nodes.length === 0
        ? ['No nodes yet: run `peerway-agent run` on a machine and claim it.']
        : table([
            [
              'NODE',
              'NAME',
              'STATUS',
              'CPU (used/offered)',
              'MEMORY (used/offered)',
              'RUNTIME',
              'DEPLOY',
              'LABELS',
            ],
            ...json.nodes.map((n) => [
              n.shortId,
              n.name,
              n.online ? 'online' : 'offline',
              n.deployable
                ? `${formatCpu(n.allocated.cpuMillis)}/${formatCpu(n.deployable.cpuMillis)}`
                : '-',
              n.deployable
                ? `${formatBytes(n.allocated.memoryBytes)}/${formatBytes(n.deployable.memoryBytes)}`
                : '-',
              n.runtime ? `${n.runtime.name} ${n.runtime.version}` : '-',
              n.deployments ? 'yes' : 'no',
              Object.entries(n.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(','),
            ]),
          ]),
    );
  });

/** Exit codes a script can use. */
const EXIT = { ok: 0, refused: 1, notRunning: 2 } as const;

/**
 * Follows a deployment until every desired replica runs: one line per
 * replica state change (pulling, starting, running, unhealthy, failed…),
 * then exit 0; still short after `timeoutS`, exit 2 with the last states.
 */
async function follow(name: string, timeoutS: number): Promise<void> {
  const seen = new Map<string, string>();
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const { json: d } = await api<DeploymentJson>(
      'GET',
      `/api/deployments/${encodeURIComponent(name)}`,
    );
    d.replicas.forEach((r, i) => {
      const key = r.id ?? `pending-${i}`;
      const line = `${r.state}${r.reason ? ` (${r.reason})` : ''}`;
      if (seen.get(key) === line) return;
      seen.set(key, line);
      console.log(`  replica ${r.id ?? '(unplaced)'}${r.node ? ` on ${r.node}` : ''}: ${line}`);
    });
    if (d.running >= d.desired) {
      console.log(`${d.name}: ${d.running}/${d.desired} running at ${d.url}`);
      return;
    }
    if (Date.now() > deadline) {
      console.error(
        `${d.name}: ${d.running}/${d.desired} running after ${timeoutS} s; \`peerway deployment ${d.name}\` shows why`,
      );
      process.exitCode = EXIT.notRunning;
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

program
  .command('deploy <file>')
  .description(
    'create or update a deployment from a spec file (YAML or JSON), then follow it until its replicas run (exit 0), or 2 if they do not within --timeout; 1 if refused',
  )
  .option('--dry-run', 'show the plan (what would be placed, kept and stopped) without acting')
  .option('--detach', 'do not follow the rollout: return once the server took the spec')
  .option('--timeout <seconds>', 'how long to follow the rollout', '120')
  .option('--json', 'the API’s answer as JSON (does not follow)')
  .action(
    async (
      file: string,
      opts: { dryRun?: boolean; detach?: boolean; timeout: string; json?: boolean },
    ) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      const timeoutS = Number(opts.timeout);
      if (!(timeoutS > 0)) throw new CliError(`--timeout ${opts.timeout}: give seconds, e.g. 120`);
      const type = extname(file) === '.json' ? 'application/json' : 'application/yaml';
      const { status, json } = await api<{
        errors?: { path: string; message: string }[];
        error?: { message: string };
        plan?: { lines: string[] };
        deployment?: DeploymentJson;
        warnings?: string[];
      }>('POST', `/api/deployments${opts.dryRun ? '?dryRun=1' : ''}`, { text, type });
      if (status === 400) {
        if (opts.json) console.log(JSON.stringify(json, null, 2));
        else
          for (const e of json.errors ?? [{ path: '', message: json.error?.message ?? 'refused' }])
            console.error(`${file}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
        process.exitCode = EXIT.refused;
        return;
      }
      print(opts, json, () => [
        ...(json.plan?.lines ?? []),
        ...(opts.dryRun
          ? ['(dry run: nothing changed)']
          : json.deployment
            ? [`Deployed ${json.deployment.name}: ${json.deployment.url}`]
            : []),
        ...(json.warnings ?? []).map((w) => `warning: ${w}`),
      ]);
      if (!opts.dryRun && !opts.detach && !opts.json && json.deployment)
        await follow(json.deployment.name, timeoutS);
    },
  );

program
  .command('deployments')
  .description('your deployments: replicas running of desired, URL')
  .option('--json', 'the API’s answer as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { json } = await api<{ deployments: DeploymentJson[] }>('GET', '/api/deployments');
    print(opts, json, () =>
      json.deployments.length === 0
        ? ['No deployments: `peerway deploy app.yaml`.']
        : table([
            ['NAME', 'RUNNING', 'URL'],
            ...json.deployments.map((d) => [d.name, `${d.running}/${d.desired}`, d.url]),
          ]),
    );
  });

program
  .command('deployment <name>')
  .description('one deployment: its replicas (node, state, reason, since) and recent events')
  .option('--json', 'the API’s answer as JSON')
  .action(async (name: string, opts: { json?: boolean }) => {
    const { json: d } = await api<DeploymentJson>(
      'GET',
      `/api/deployments/${encodeURIComponent(name)}`,
    );
    const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
    print(opts, d, () => [
      `${d.name}  ${d.running}/${d.desired} running  ${d.url}`,
      '',
      ...table([
        ['REPLICA', 'NODE', 'STATE', 'SINCE', 'REASON'],
        ...d.replicas.map((r) => [
          r.id ?? '-',
          r.node ?? '-',
          r.state,
          when(r.since),
          r.reason ?? '',
        ]),
      ]),
      ...(d.events?.length
        ? [
            '',
            'Events:',
            ...d.events.slice(-10).map((e) => `  ${when(e.at)}  ${e.kind}  ${e.message}`),
          ]
        : []),
    ]);
  });

program
  .command('undeploy <name>')
  .description('delete a deployment: its nodes stop and remove its containers')
  .option('--json', 'the API’s answer as JSON')
  .action(async (name: string, opts: { json?: boolean }) => {
    const { json } = await api('DELETE', `/api/deployments/${encodeURIComponent(name)}`);
    print(opts, json, () => [`Deleted ${name}: its nodes stop its containers.`]);
  });

program.addCommand(
  jobsCommand({
    api,
    login,
    error: (m) => new CliError(m),
    print,
    table,
    out: (t) => console.log(t),
  }),
);

program.parseAsync(process.argv).catch((err: unknown) => {
  // our own refusals and the protocol's (a bad URL) are said in words; anything else is a bug
  const known = err instanceof CliError || err instanceof PeerwayError;
  console.error(
    `peerway: ${known ? (err as Error).message : String((err as Error)?.stack ?? err)}`,
  );
  process.exitCode = EXIT.refused;
});
