/**
 * Two replicas on three nodes survive the death of the node serving an open
 * page: a real server (`--reschedule-after 3s`), three `peerway-agent run
 * --deployments` processes (three nodes of one owner, each labelling its
 * containers with its own short ID), real Podman and a loopback registry
 * with the poll app built from scratch. Its page fetches `/cgi-bin/who`
 * every 200 ms, which answers the serving container's ID, so the page
 * itself says which replica serves it. kill -9 the node whose container
 * answers and remove its containers (the machine died): the page's polls
 * succeed again through the other replica without a reload, and the
 * deployment is back to two running replicas on the two remaining nodes.
 * Prints both times. Everything made carries `peerway.test=<run id>`, and
 * exactly that is removed at the end, also after a failure.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack, screenshot } from '../support/stack';
import { TestRegistry, WEB_PORT } from '../support/registry';
import { startTestEngine } from '../support/podman';
import {
  apiClient,
  buildPollImage,
  killNode,
  nodeContainers,
  startDeployNode,
  type DeployNode,
  type Poll,
} from '../support/cluster';
import type { PodmanService } from '@peerway/node-agent/runtime';
import { until as untilTruthy } from '../../signaling-server/test/cluster-fixtures';

/** A node offline this long loses its replicas (the server's --reschedule-after). */
const RESCHEDULE_AFTER = '3s';
const PRESENCE_TIMEOUT_MS = 3000;
/** The page's polls must succeed again within this long of the kill. */
const PAGE_BACK_WITHIN_MS = 20_000;

const stack = new Stack();
const registry = new TestRegistry();
const runId = registry.runId;
const savedDockerHost = process.env.DOCKER_HOST;
let engine: PodmanService | undefined;
let token = '';
let image = '';
const nodes: DeployNode[] = [];
const api = apiClient(
  () => stack.url,
  () => token,
);
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 60_000) => untilTruthy(fn, what, ms);

beforeAll(async () => {
  await registry.start();
  image = await buildPollImage(registry);
  engine = await startTestEngine(stack.dir);
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  await stack.start([
    '--reschedule-after',
    RESCHEDULE_AFTER,
    '--presence-timeout-ms',
    String(PRESENCE_TIMEOUT_MS),
  ]);
  token = (await stack.user()).token;
  for (const name of ['n1', 'n2', 'n3'])
    nodes.push(await startDeployNode(stack, token, registry, name));
}, 180_000);

afterAll(async () => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  await stack.stop();
  await engine?.stop();
  await registry.stop();
});

/** The deployment's running replicas (node short IDs), once `test` holds for them. */
const running = (name: string, test: (nodes: string[]) => boolean, what: string, ms?: number) =>
  until(
    async () => {
      const d = (await api('GET', `/api/deployments/${name}`)).json;
      const on: string[] = (d.replicas ?? [])
        .filter((r: any) => r.state === 'running')
        .map((r: any) => r.node as string)
        .sort();
      return test(on) ? on : undefined;
    },
    what,
    ms,
  );

it('two replicas on three nodes: kill -9 the node serving the page, the page goes on through the other, and two run again', async () => {
  const name = `poll-${runId}`;
  const r = await api('POST', '/api/deployments', {
    name,
    image,
    port: WEB_PORT,
    replicas: 2,
    maxPerNode: 1,
    placement: 'spread',
    resources: { cpu: 0.25, memory: '64MiB' },
    health: { path: '/healthz', intervalS: 1, timeoutS: 1 },
    access: 'public',
  });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  const firstNodes = await running(name, (on) => on.length === 2, 'two running replicas', 90_000);
  expect(new Set(firstNodes).size).toBe(2);

  // which container is which node's: the labels the agents gave them
  const containerNode = async (): Promise<Map<string, string>> => {
    const m = new Map<string, string>();
    for (const n of nodes)
      for (const id of await nodeContainers(n.shortId, runId)) m.set(id.slice(0, 12), n.shortId);
    return m;
  };

  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl(name, '/'));
  const app = Stack.app(page);
  const polls = () =>
    app.locator('body').evaluate(() => (window as unknown as { polls: Poll[] }).polls);
  // the serving replica, as the page sees it: the container that answers its polls
  const servingContainer = await until(
    async () => {
      const p = await polls().catch(() => []);
      const okTail = p.slice(-3);
      return okTail.length === 3 && okTail.every((x) => x.ok && x.who === okTail[0]!.who)
        ? okTail[0]!.who
        : undefined;
    },
    'the page polling one replica',
    30_000,
  ).catch(async (err: Error) => {
    await screenshot(page, 'cluster-replicas-no-polls');
    throw new Error(`${err.message}; last polls: ${JSON.stringify((await polls()).slice(-5))}`);
  });
  const before = await containerNode();
  const servingNode = before.get(servingContainer);
  expect(servingNode, `container ${servingContainer} among ${[...before.keys()]}`).toBeDefined();
  expect(firstNodes).toContain(servingNode);
  // the server's view agrees: the serving node reports the page's session in its load
  await until(
    async () => {
      const list = (await api('GET', '/api/nodes')).json.nodes as any[];
      return list.find((n) => n.shortId === servingNode)?.load?.sessions >= 1;
    },
    `node ${servingNode} reporting the page's session`,
    10_000,
  );
  const otherReplicaNode = firstNodes.find((n) => n !== servingNode)!;
  const spareNode = nodes.find((n) => !firstNodes.includes(n.shortId))!.shortId;
  const dead = nodes.find((n) => n.shortId === servingNode)!;

  // a reload of the shell page would show here
  const navigations: string[] = [];
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
  const { killedAt, removed } = await killNode(dead, runId);
  expect(removed).toBe(1);

  // the page gets answers from a container on another node
  const back = await until(
    async () => {
      const map = await containerNode();
      const p = await polls().catch(() => []);
      return p
        .filter((x) => x.done >= killedAt && x.ok && map.has(x.who) && x.who !== servingContainer)
        .sort((a, b) => a.done - b.done)[0];
    },
    'a successful poll through another replica',
    PAGE_BACK_WITHIN_MS,
  );
  const pageBackMs = back.done - killedAt;
  const servedBy = (await containerNode()).get(back.who);
  expect(servedBy).not.toBe(servingNode);
  expect(navigations, 'the shell page did not reload').toEqual([]);
  // the polls in flight at the kill or sent before the page was back: failed, or held until answered
  const gap = (await polls()).filter((x) => x.done >= killedAt && x.at <= back.done);
  const failed = gap.filter((x) => !x.ok);
  const failingMs = failed.length ? back.done - Math.min(...failed.map((x) => x.done)) : 0;
  const longestWaitMs = Math.max(0, ...gap.map((x) => x.done - x.at));
  await screenshot(page, 'cluster-replicas-failover');

  // two replicas run again, on the two nodes still alive
  const after = await running(
    name,
    (on) => on.length === 2 && !on.includes(servingNode!),
    'two running replicas on the remaining nodes',
    90_000,
  );
  const twoRunningMs = Date.now() - killedAt;
  expect(after).toEqual([otherReplicaNode, spareNode].sort());
  const events = (await api('GET', `/api/deployments/${name}`)).json.events as any[];
  expect(events.map((e) => e.kind)).toContain('node-lost');
  // and the page is still served, now or through either live replica
  const okAfter = (await polls()).filter((x) => x.at > Date.now() - 1000 && x.ok).length;
  expect(okAfter).toBeGreaterThan(0);

  console.log(
    `[cluster-replicas] killed ${servingNode} (served container ${servingContainer}); answers from ${servedBy}; ` +
      `${failed.length} failed polls over ${failingMs} ms, longest wait for an answer ${longestWaitMs} ms; replacement on ${spareNode}`,
  );
  console.log(
    `cluster-replicas: page back after ${(pageBackMs / 1000).toFixed(1)} s, 2/2 running after ${(twoRunningMs / 1000).toFixed(1)} s`,
  );
  expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
}, 300_000);
