/**
 * Deploy a container, get a URL, survive its node's death: a real server,
 * two `peerway-agent run --deployments` processes (two nodes of one owner),
 * real Podman (an API service of the test's own, given to both agents as
 * DOCKER_HOST; each node's containers carry its own `peerway.node` label)
 * and a real registry on loopback with a test image built from scratch.
 * `POST /api/deployments` places one replica; Chromium opens
 * http://<name>.localhost:<port>/ and sees the container's page. kill -9
 * the agent running it and remove its containers (the machine died): the
 * replica is placed on the other node and the page loads again; the time
 * from the kill to the page is printed. Every container carries
 * `peerway.test=<run id>`, and exactly those are removed at the end.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import Dockerode from 'dockerode';
import { Stack, screenshot, type Proc } from '../support/stack';
import { TestRegistry, WEB_PORT } from '../support/registry';
import { TEST_LABEL, podman, startTestEngine } from '../support/podman';
import type { PodmanService } from '@peerway/node-agent/runtime';
import { until as untilTruthy } from '../../signaling-server/test/cluster-fixtures';

/** A node offline this long loses its replicas (the server's --reschedule-after). */
const RESCHEDULE_AFTER = '3s';
const PRESENCE_TIMEOUT_MS = 3000;

const stack = new Stack();
const registry = new TestRegistry();
const runId = registry.runId;
const savedDockerHost = process.env.DOCKER_HOST;
let engine: PodmanService;
let docker: Dockerode;
let token = '';
const agents: Record<string, Proc & { home: string }> = {};

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(stack.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as any };
}

/** The shared poll (signaling-server/test/cluster-fixtures.ts), with this file's patience. */
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 60_000) => untilTruthy(fn, what, ms);

/** The deployment's running replica, once there is one (on `node` when given). */
const runningReplica = (name: string, node?: string, ms?: number) =>
  until(
    async () => {
      const d = (await api('GET', `/api/deployments/${name}`)).json;
      return d.replicas?.find(
        (r: any) => r.state === 'running' && (node === undefined || r.node === node),
      );
    },
    `a running replica of ${name}${node ? ` on ${node}` : ''}`,
    ms,
  );

beforeAll(async () => {
  await registry.start();
  await registry.buildWebImage();
  engine = await startTestEngine(stack.dir);
  docker = new Dockerode({ socketPath: engine.socketPath });
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  await stack.start([
    '--reschedule-after',
    RESCHEDULE_AFTER,
    '--presence-timeout-ms',
    String(PRESENCE_TIMEOUT_MS),
  ]);
  token = (await stack.user()).token;
  for (const name of ['n1', 'n2']) {
    agents[name] = await stack.agent(token, [], undefined, [
      '--name',
      name,
      '--deployments',
      '--registry',
      registry.host,
      '--container-label',
      `${TEST_LABEL}=${runId}`,
    ]);
    await agents[name].waitFor(/Connected to/);
  }
}, 180_000);

afterAll(async () => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  await stack.stop();
  await engine?.stop();
  await registry.stop();
});

it('a deployment opens in Chromium; kill -9 its node: the replica moves and the page loads again', async () => {
  const shortIds: Record<string, string> = {};
  for (const [name, a] of Object.entries(agents))
    shortIds[name] = (await a.waitFor(/as node ([0-9a-f]{6})/))[1]!;
  const name = `web-${runId}`;
  const deployedAt = Date.now();
  const r = await api('POST', '/api/deployments', {
    name,
    image: registry.webImage,
    port: WEB_PORT,
    replicas: 1,
    resources: { cpu: 0.25, memory: '64MiB' },
    health: { path: '/healthz', intervalS: 1, timeoutS: 1 },
    access: 'public',
  });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  const first = await runningReplica(name);
  const firstMs = Date.now() - deployedAt;

  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl(name, '/'));
  const heading = Stack.app(page).locator('h1');
  await expect
    .poll(() => heading.textContent(), { timeout: 30_000 })
    .toBe(`peerway test web ${runId}`);
  const firstPageMs = Date.now() - deployedAt;
  await screenshot(page, 'cluster-deploy-first');

  // the node running it dies: its agent is killed and its containers go with the machine
  const dead = Object.keys(shortIds).find((n) => shortIds[n] === first.node)!;
  const other = Object.keys(shortIds).find((n) => n !== dead)!;
  await agents[dead]!.stop('SIGKILL');
  const killedAt = Date.now();
  await podman([
    'rm',
    '-f',
    '-t',
    '0',
    '--filter',
    `label=peerway.node=${first.node}`,
    '--filter',
    `label=${TEST_LABEL}=${runId}`,
  ]).catch(async () => {
    // older podman rm takes no --filter: remove by the listed IDs
    const ids = (
      await docker.listContainers({
        all: true,
        filters: { label: [`peerway.node=${first.node}`, `${TEST_LABEL}=${runId}`] },
      })
    ).map((c) => c.Id);
    if (ids.length) await podman(['rm', '-f', '-t', '0', ...ids]);
  });

  const moved = await runningReplica(name, shortIds[other], 90_000);
  const movedMs = Date.now() - killedAt;
  expect(moved.id).not.toBe(first.id);
  await until(
    async () => {
      await page.goto(stack.serviceUrl(name, '/')).catch(() => undefined);
      return (
        (await heading.textContent({ timeout: 5_000 }).catch(() => null)) ===
        `peerway test web ${runId}`
      );
    },
    'the page from the moved replica',
    60_000,
  );
  const recoveredMs = Date.now() - killedAt;
  await screenshot(page, 'cluster-deploy-moved');

  // the new replica's container is the surviving node's, and the dead node's is gone
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`${TEST_LABEL}=${runId}`, `peerway.deployment=${name}`] },
  });
  expect(left.map((c) => c.Labels['peerway.node'])).toEqual([shortIds[other]]);

  console.table([
    { step: 'deploy → replica running', ms: firstMs },
    { step: 'deploy → page in Chromium', ms: firstPageMs },
    {
      step: `kill -9 → replica running on the other node (reschedule-after ${RESCHEDULE_AFTER})`,
      ms: movedMs,
    },
    { step: 'kill -9 → page loads again', ms: recoveredMs },
  ]);
  expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
}, 240_000);
