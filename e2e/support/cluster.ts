/**
 * Several Peerway server instances sharing one real redis-server, behind a
 * test load balancer on one loopback port: the URL every agent and browser
 * uses. Extends Stack, so users, agents and Chromium work as usual.
 *
 * Below it, the pieces of a deployment cluster on real Podman: the poll
 * app image, deployment nodes (agent processes), a node's death, the API.
 */
import { join } from 'node:path';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Balancer } from './balancer';
import { TEST_LABEL, podman } from './podman';
import { WEB_PORT, type TestRegistry } from './registry';
import { Proc, Stack } from './stack';

export interface Instance {
  proc: Proc;
  port: number;
  /** Direct URL of this instance (bypassing the balancer). */
  url: string;
}

export class ClusterStack extends Stack {
  readonly balancer = new Balancer();
  readonly instances: Instance[] = [];
  redis!: Proc;
  private redisPort = 0;

  private get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}/0`;
  }

  protected override storeArgs(): string[] {
    return ['--redis-url', this.redisUrl];
  }

  /** Starts Redis (AOF on), the balancer and `n` instances. */
  override async start(extraArgs: string[] = [], n = 2): Promise<void> {
    const dir = join(this.dir, 'redis');
    mkdirSync(dir, { recursive: true });
    this.redisPort = 21000 + Math.floor(Math.random() * 20000);
    this.redis = new Proc(
      spawn(
        'redis-server',
        [
          '--port',
          String(this.redisPort),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.onStop(() => this.redis.stop());
    await this.redis.waitFor(/Ready to accept connections/);
    await this.balancer.listen();
    this.onStop(() => this.balancer.close());
    this.port = this.balancer.port;
    this.url = `http://localhost:${this.port}`;
    for (let i = 0; i < n; i++) await this.startInstance(extraArgs);
  }

  /** One more instance; the balancer learns it. */
  async startInstance(extraArgs: string[] = []): Promise<Instance> {
    const proc = this.spawn(
      this.serverBin,
      [
        '--port',
        '0',
        '--redis-url',
        this.redisUrl,
        '--public-url',
        this.url,
        '--heartbeat-interval-ms',
        '1000',
        ...extraArgs,
      ],
      {},
    );
    const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(m[1]);
    const inst = { proc, port, url: `http://127.0.0.1:${port}` };
    this.instances.push(inst);
    this.balancer.backends.push(port);
    return inst;
  }

  /** New connections go to instance `i` first (to the next live one if it is down). */
  route(i: number): void {
    this.balancer.prefer = i;
  }
}

/** GET JSON from one instance with a bearer token. */
export async function getJson(base: string, path: string, token: string): Promise<any> {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

// ---------------------------------------------------------------------------
// Deployment nodes on real Podman (cluster-replicas.test.ts, bench/src/cluster.ts)

/**
 * The poll app: `/index.html` whose script fetches `/cgi-bin/who` from its
 * origin every 200 ms (each poll given up after 2 s) and keeps a log of
 * polls (`window.polls`: sent, done, ok, the answering container) and counts
 * (`#ok`, `#fail`, `#who`); `/cgi-bin/who` is a busybox httpd CGI script
 * that answers the container's hostname (its short ID), so the page itself
 * says which replica serves it; `/healthz` for the health check.
 */
const POLL_PAGE = `<!doctype html><html><head><title>poll</title></head><body>
<h1>poll</h1><p>who <span id="who">-</span> ok <span id="ok">0</span> fail <span id="fail">0</span></p>
<script>
window.polls = [];
let ok = 0, fail = 0;
setInterval(async () => {
  const at = Date.now();
  try {
    const r = await fetch('/cgi-bin/who', { cache: 'no-store', signal: AbortSignal.timeout(2000) });
    if (!r.ok) throw new Error(String(r.status));
    const who = (await r.text()).trim();
    window.polls.push({ at, done: Date.now(), ok: true, who });
    document.getElementById('who').textContent = who;
    document.getElementById('ok').textContent = String(++ok);
  } catch (e) {
    window.polls.push({ at, done: Date.now(), ok: false, who: String(e) });
    document.getElementById('fail').textContent = String(++fail);
  }
}, 200);
</script></body></html>
`;

/** One poll of the poll app's page, as its script logged it. */
export interface Poll {
  /** When it was sent and when it was answered or failed (Date.now()). */
  at: number;
  done: number;
  ok: boolean;
  /** The answering container's short ID (an error's text when not ok). */
  who: string;
}

/**
 * Builds the poll app image (`FROM scratch`, static busybox with /bin/sh
 * for the CGI script, httpd on WEB_PORT), labelled with the registry's run
 * ID, pushes it to `registry` as `peerway-test/poll:1` and removes the
 * local copy, so the first node to run it pulls it from the registry.
 */
export async function buildPollImage(registry: TestRegistry): Promise<string> {
  const ctx = join(registry.dir, 'poll');
  mkdirSync(join(ctx, 'bin'), { recursive: true });
  mkdirSync(join(ctx, 'www/cgi-bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(ctx, 'bin/busybox'));
  symlinkSync('busybox', join(ctx, 'bin/sh'));
  writeFileSync(join(ctx, 'www/index.html'), POLL_PAGE);
  writeFileSync(join(ctx, 'www/healthz'), 'ok\n');
  writeFileSync(
    join(ctx, 'www/cgi-bin/who'),
    // CRLF: busybox passes the script's header lines through, and Node's HTTP parser refuses bare LF
    '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\nCache-Control: no-store\\r\\n\\r\\n%s\\n" "$HOSTNAME"\n',
    { mode: 0o755 },
  );
  writeFileSync(
    join(ctx, 'Containerfile'),
    [
      'FROM scratch',
      'COPY bin /bin',
      'COPY www /www',
      `EXPOSE ${WEB_PORT}`,
      `CMD ["/bin/busybox", "httpd", "-f", "-p", "${WEB_PORT}", "-h", "/www"]`,
      '',
    ].join('\n'),
  );
  const image = `${registry.host}/peerway-test/poll:1`;
  await podman(['build', '--label', `${TEST_LABEL}=${registry.runId}`, '-t', image, ctx]);
  await podman(['push', '--tls-verify=false', image]);
  await podman(['rmi', image]);
  return image;
}

/** A `peerway-agent run --deployments` process: one node, with its short ID. */
export type DeployNode = Proc & { home: string; name: string; shortId: string };

/**
 * Starts an agent as a deployment node named `name` that pulls only from
 * `registry` and labels its containers `peerway.test=<run id>` (besides
 * its own `peerway.node=<short ID>`); resolves once it is connected.
 * DOCKER_HOST in the environment names the engine it uses.
 */
export async function startDeployNode(
  stack: Stack,
  token: string,
  registry: TestRegistry,
  name: string,
  extraArgs: string[] = [],
  /** An earlier node's PEERWAY_HOME: the same node (identity) starts again. */
  home?: string,
): Promise<DeployNode> {
  const p = await stack.agent(token, [], home, [
    '--name',
    name,
    '--deployments',
    '--registry',
    registry.host,
    '--container-label',
    `${TEST_LABEL}=${registry.runId}`,
    ...extraArgs,
  ]);
  // generous: on a loaded machine an agent's start (tsx, Podman's API service) can take tens of seconds
  const shortId = (await p.waitFor(/as node ([0-9a-f]{6})/, 120_000))[1]!;
  await p.waitFor(/Connected to/, 120_000);
  return Object.assign(p, { name, shortId });
}

/** The IDs of the containers of node `shortId` in run `runId`. */
export async function nodeContainers(shortId: string, runId: string): Promise<string[]> {
  return (
    await podman([
      'ps',
      '-a',
      '-q',
      '--no-trunc',
      '--filter',
      `label=peerway.node=${shortId}`,
      '--filter',
      `label=${TEST_LABEL}=${runId}`,
    ])
  )
    .split('\n')
    .filter(Boolean);
}

/**
 * The machine dies: `kill -9` of the node's agent, then its containers go
 * (`podman rm -f` of those labelled with its short ID). Resolves with the
 * time of the kill (Date.now()) and how many containers were removed.
 */
export async function killNode(
  node: DeployNode,
  runId: string,
): Promise<{ killedAt: number; removed: number }> {
  await node.stop('SIGKILL');
  const killedAt = Date.now();
  const ids = await nodeContainers(node.shortId, runId);
  if (ids.length) await podman(['rm', '-f', '-t', '0', ...ids]);
  return { killedAt, removed: ids.length };
}

/** The server's HTTP API with a bearer token: `{ status, json }`. */
export function apiClient(base: () => string, token: () => string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base() + path, {
      method,
      headers: {
        authorization: `Bearer ${token()}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = { text };
    }
    return { status: res.status, json };
  };
}
