/**
 * `npm run bench:cluster -w @peerway/bench`: the cluster's times on this
 * machine, with real processes: the server (`peerway-server`), two
 * `peerway-agent run --deployments` nodes, a Podman API service of the
 * bench's own and Debian's docker-registry on loopback, with the e2e tests'
 * web image (built from scratch around static busybox: httpd on 8080).
 *
 * - deploy → first byte, image already in Podman, and pulled from the
 *   registry (removed from Podman first);
 * - a node's death (kill -9 of its agent, its containers removed) → the
 *   replacement replica's first byte, with the server's default
 *   `--reschedule-after` (10 s) and with 3 s, split into detection, the
 *   grace and placement, pull/start (to the first passed health check) and
 *   first byte;
 * - beside each, in the same run: `podman run` of the same image to its
 *   first HTTP byte on a published loopback port (the engine's own time).
 *
 * "First byte" is what a visitor's first byte really is: the first body
 * byte of `GET /` from the container through a tunnel (the Node tunnel
 * client: token, signaling, WebRTC, the agent, the container), tried every
 * 100 ms from the deploy (or the kill) on. A plain fetch of the service URL
 * would only time the gateway's shell page, which never touches the node.
 *
 * The two nodes share this machine's Podman and so its image store: a
 * replacement starts with the image present. Heartbeat and presence
 * timeout are the server's defaults (10 s, 30 s; a kill -9 closes the
 * agent's socket, so the server sees it go at once). Health checks every
 * 1 s. BENCH_RUNS runs of each (default 3). Writes
 * bench/results/cluster-<date>.json. Removes what it made: containers and
 * images labelled `peerway.test=<run id>`, the processes, temp dirs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connectTunnel } from '@peerway/node-agent/client';
import { defaultUlimits, type PodmanService } from '@peerway/node-agent/runtime';
import { Stack } from '../../e2e/support/stack';
import { TestRegistry, WEB_PORT } from '../../e2e/support/registry';
import { TEST_LABEL, podman, startTestEngine } from '../../e2e/support/podman';
import {
  apiClient,
  nodeContainers,
  startDeployNode,
  type DeployNode,
} from '../../e2e/support/cluster';
import { ROOT, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
/** Gives up on one measurement after this long (a broken run, not a slow one). */
const STEP_TIMEOUT_MS = 120_000;
const POLL_MS = 100;
const SERVER_DEFAULTS = { heartbeatIntervalMs: 10_000, presenceTimeoutMs: 30_000 };

const registry = new TestRegistry();
const runId = registry.runId;
let image = '';
let seq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reads the first chunk of a body; resolves when a byte is there. */
async function firstChunk(body: ReadableStream<Uint8Array>): Promise<boolean> {
  const reader = body.getReader();
  try {
    const { value } = await reader.read();
    return !!value && value.length > 0;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Date.now() at the first body byte of GET / through a tunnel to `service`. */
function tunnelFirstByte(serverUrl: string, service: string): Promise<number> {
  return until(async () => {
    const c = await connectTunnel({ serverUrl, service, timeoutMs: 5_000 });
    try {
      const res = await c.request('GET', '/');
      if (res.status !== 200) return undefined;
      return (await firstChunk(res.body)) ? Date.now() : undefined;
    } finally {
      c.close();
    }
  }, `the first byte of ${service}`);
}

/** `podman run` of the image to its first HTTP byte on a loopback port, ms; removes it after. */
async function podmanRunFirstByte(pull: boolean): Promise<number> {
  const port = await freePort();
  const ulimits = defaultUlimits().flatMap((u) => ['--ulimit', `${u.name}=${u.soft}:${u.hard}`]);
  const t0 = Date.now();
  const id = (
    await podman([
      'run',
      '-d',
      '--label',
      `${TEST_LABEL}=${runId}`,
      ...ulimits,
      '-p',
      `127.0.0.1:${port}:${WEB_PORT}`,
      ...(pull ? ['--tls-verify=false'] : []),
      image,
    ])
  ).trim();
  try {
    const at = await until(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      return res.body && (await firstChunk(res.body)) ? Date.now() : undefined;
    }, 'podman run: the first byte');
    return at - t0;
  } finally {
    await podman(['rm', '-f', '-t', '0', id]);
  }
}

async function imagePresent(): Promise<boolean> {
  return (await podman(['images', '-q', image])).trim() !== '';
}

async function removeImage(): Promise<void> {
  if (await imagePresent()) await podman(['rmi', '-f', image]);
}

async function pullImage(): Promise<void> {
  if (!(await imagePresent())) await podman(['pull', '--tls-verify=false', image]);
}

/** A server with its settings and two deployment nodes. */
class BenchCluster {
  readonly stack = new Stack();
  token = '';
  nodes: DeployNode[] = [];
  readonly api = apiClient(
    () => this.stack.url,
    () => this.token,
  );

  async start(serverArgs: string[]): Promise<void> {
    await this.stack.start([
      '--heartbeat-interval-ms',
      String(SERVER_DEFAULTS.heartbeatIntervalMs),
      ...serverArgs,
    ]);
    this.token = (await this.stack.user()).token;
    for (const name of ['n1', 'n2'])
      this.nodes.push(await startDeployNode(this.stack, this.token, registry, name));
  }

  /** POSTs a one-replica deployment of the image; resolves with its name and the POST's time. */
  async deploy(): Promise<{ name: string; at: number }> {
    const name = `b${++seq}-${runId}`;
    const at = Date.now();
    const r = await this.api('POST', '/api/deployments', {
      name,
      image,
      port: WEB_PORT,
      replicas: 1,
      resources: { cpu: 0.25, memory: '64MiB' },
      health: { path: '/healthz', intervalS: 1, timeoutS: 1 },
      access: 'public',
    });
    if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    return { name, at };
  }

  async deployment(name: string): Promise<any> {
    return (await this.api('GET', `/api/deployments/${name}`)).json;
  }

  /** Undeploys and waits until its containers are gone (so the image can be removed). */
  async undeploy(name: string): Promise<void> {
    await this.api('DELETE', `/api/deployments/${name}`);
    await until(
      async () =>
        (
          await podman([
            'ps',
            '-a',
            '-q',
            '--filter',
            `label=peerway.deployment=${name}`,
            '--filter',
            `label=${TEST_LABEL}=${runId}`,
          ])
        ).trim() === '',
      `${name}'s containers gone`,
    );
  }

  async stop(): Promise<void> {
    await this.stack.stop();
  }
}

/** The time of the first event of `kinds` for `allocation`, or NaN. */
function eventAt(d: any, allocation: string, kinds: string[]): number {
  const e = (d.events as any[]).find((x) => x.allocation === allocation && kinds.includes(x.kind));
  return e ? Number(e.at) : NaN;
}

/** The replica's own steps, from its events: placed → container started → first passed health check. */
function replicaSteps(d: any, allocation: string) {
  const placed = eventAt(d, allocation, ['placed', 'rescheduled']);
  const started = eventAt(d, allocation, ['starting']);
  const running = eventAt(d, allocation, ['started']);
  return { placed, started, running };
}

type DeploySample = {
  totalMs: number;
  /** POST → the replica placed on a node (the server: validate, schedule, store). */
  placeMs: number;
  /** placed → the container started (the agent: receive, the pull if any, create, start). */
  pullCreateStartMs: number;
  /** the container started → its first passed health check (`running`). */
  healthMs: number;
  /** running → the first byte through a tunnel (announce, session, WebRTC, request). */
  firstByteMs: number;
  referenceMs: number;
};

async function deployRun(c: BenchCluster, pull: boolean): Promise<DeploySample> {
  if (pull) await removeImage();
  else await pullImage();
  const referenceMs = await podmanRunFirstByte(pull);
  if (pull) await removeImage();
  const { name, at } = await c.deploy();
  const byteAt = await tunnelFirstByte(c.stack.url, name);
  const d = await c.deployment(name);
  const s = replicaSteps(d, d.replicas[0].id);
  await c.undeploy(name);
  return {
    totalMs: byteAt - at,
    placeMs: s.placed - at,
    pullCreateStartMs: s.started - s.placed,
    healthMs: s.running - s.started,
    firstByteMs: byteAt - s.running,
    referenceMs,
  };
}

type DeathSample = {
  totalMs: number;
  /** kill -9 → the server shows the node offline. */
  detectMs: number;
  /** offline → the replacement placed on the other node (the reschedule grace, then the plan). */
  graceAndPlaceMs: number;
  /** placed → the container started (image present: the nodes share one store). */
  pullCreateStartMs: number;
  /** the container started → its first passed health check. */
  healthMs: number;
  /** running → the first byte through a tunnel. */
  firstByteMs: number;
  referenceMs: number;
};

async function deathRun(c: BenchCluster): Promise<DeathSample> {
  await pullImage();
  const referenceMs = await podmanRunFirstByte(false);
  const { name } = await c.deploy();
  await tunnelFirstByte(c.stack.url, name);
  const before = (await c.deployment(name)).replicas.find((r: any) => r.state === 'running');
  const i = c.nodes.findIndex((n) => n.shortId === before.node);
  const dead = c.nodes[i]!;
  // the machine dies: its agent first, then its containers; the clocks start at the kill
  await dead.stop('SIGKILL');
  const killedAt = Date.now();
  const byte = tunnelFirstByte(c.stack.url, name);
  const detected = until(async () => {
    const nodes = (await c.api('GET', '/api/nodes')).json.nodes as any[];
    return nodes.find((n) => n.shortId === dead.shortId)?.online === false ? Date.now() : undefined;
  }, `node ${dead.shortId} offline`);
  const ids = await nodeContainers(dead.shortId, runId);
  if (ids.length) await podman(['rm', '-f', '-t', '0', ...ids]);
  const detectedAt = await detected;
  const byteAt = await byte;
  const d = await c.deployment(name);
  const rep = d.replicas.find((r: any) => r.state === 'running' && r.node !== dead.shortId);
  if (!rep) throw new Error(`no replacement of ${name} runs: ${JSON.stringify(d.replicas)}`);
  const s = replicaSteps(d, rep.id);
  // the node comes back (same identity), so every run has two nodes
  c.nodes[i] = await startDeployNode(c.stack, c.token, registry, dead.name, [], dead.home);
  await c.undeploy(name);
  return {
    totalMs: byteAt - killedAt,
    detectMs: detectedAt - killedAt,
    graceAndPlaceMs: s.placed - detectedAt,
    pullCreateStartMs: s.started - s.placed,
    healthMs: s.running - s.started,
    firstByteMs: byteAt - s.running,
    referenceMs,
  };
}

type Row = { name: string; samples: Record<string, number>[] };
const rows: Row[] = [];

function summary(samples: Record<string, number>[], key: string) {
  return stat(samples.map((s) => s[key]!).filter((x) => Number.isFinite(x)));
}

const fmtS = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');

function printTable(): void {
  console.log(`\ncluster, ${RUNS} runs each (seconds: median, min–max)`);
  console.log(
    '| measurement | median | min–max | split (medians) | podman run → first byte, same runs |',
  );
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    const t = summary(r.samples, 'totalMs');
    const ref = summary(r.samples, 'referenceMs');
    const parts = Object.keys(r.samples[0] ?? {})
      .filter((k) => k !== 'totalMs' && k !== 'referenceMs')
      .map((k) => `${k.replace(/Ms$/, '')} ${fmtS(summary(r.samples, k).median)}`)
      .join(' · ');
    console.log(
      `| ${r.name} | ${fmtS(t.median)} | ${fmtS(t.min)}–${fmtS(t.max)} | ${parts} | ${fmtS(ref.median)} (${fmtS(ref.min)}–${fmtS(ref.max)}) |`,
    );
  }
}

const loadAtStart = loadavg()[0] ?? 0;
const savedDockerHost = process.env.DOCKER_HOST;
let engine: PodmanService | undefined;
let cluster: BenchCluster | undefined;
try {
  await registry.start();
  image = (await registry.buildWebImage()).image;
  const engineDir = join(registry.dir, 'engine');
  mkdirSync(engineDir, { recursive: true });
  engine = await startTestEngine(engineDir);
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;

  cluster = new BenchCluster();
  await cluster.start([]);
  const present: DeploySample[] = [];
  const pulled: DeploySample[] = [];
  for (let i = 0; i < RUNS; i++) {
    present.push(await deployRun(cluster, false));
    pulled.push(await deployRun(cluster, true));
    console.error(`[cluster] deploy run ${i + 1}/${RUNS} done`);
  }
  rows.push({ name: 'deploy → first byte, image present', samples: present });
  rows.push({ name: 'deploy → first byte, pulled from the registry', samples: pulled });
  const death30: DeathSample[] = [];
  for (let i = 0; i < RUNS; i++) {
    death30.push(await deathRun(cluster));
    console.error(`[cluster] death run (reschedule-after 10s, the default) ${i + 1}/${RUNS} done`);
  }
  rows.push({
    name: 'node kill -9 → replacement first byte, --reschedule-after 10s (default)',
    samples: death30,
  });
  await cluster.stop();

  cluster = new BenchCluster();
  await cluster.start(['--reschedule-after', '3s']);
  const death3: DeathSample[] = [];
  for (let i = 0; i < RUNS; i++) {
    death3.push(await deathRun(cluster));
    console.error(`[cluster] death run (reschedule-after 3s) ${i + 1}/${RUNS} done`);
  }
  rows.push({
    name: 'node kill -9 → replacement first byte, --reschedule-after 3s',
    samples: death3,
  });
  await cluster.stop();
  cluster = undefined;

  printTable();
  const targets = {
    'first byte ≤ 5 s of deploy, image present': summary(present, 'totalMs').median <= 5_000,
    'replacement serves ≤ 30 s of the death (default reschedule-after)':
      summary(death30, 'totalMs').median <= 30_000,
    'replacement serves ≤ 30 s of the death (reschedule-after 3s)':
      summary(death3, 'totalMs').median <= 30_000,
  };
  console.log(
    `\nload average (1 min): ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`,
  );
  console.log('\ntargets (medians):');
  for (const [k, ok] of Object.entries(targets)) console.log(`- ${k}: ${ok ? 'holds' : 'MISSED'}`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, `bench/results/cluster-${new Date().toISOString().slice(0, 10)}.json`);
  const runLoad = loadSample.end();
  console.log(`\n${loadLine(runLoad)}`);
  writeFileSync(
    out,
    JSON.stringify(
      {
        load: runLoad,
        date: new Date().toISOString(),
        runs: RUNS,
        node: process.version,
        // the machine's load: 1-minute load average at the start and the end of the run
        loadAverage: { start: loadAtStart, end: loadavg()[0] },
        podman: (await podman(['version', '--format', '{{.Client.Version}}'])).trim(),
        firstByte: 'GET / through the Node tunnel client, tried every 100 ms',
        server: { ...SERVER_DEFAULTS, rescheduleAfter: ['10s (default)', '3s'] },
        health: { intervalS: 1, timeoutS: 1 },
        rows: rows.map((r) => ({
          name: r.name,
          total: summary(r.samples, 'totalMs'),
          reference: summary(r.samples, 'referenceMs'),
          samples: r.samples,
        })),
        targets,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${out}`);
} finally {
  await cluster?.stop().catch(() => {});
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  await engine?.stop().catch(() => {});
  await registry.stop();
}
