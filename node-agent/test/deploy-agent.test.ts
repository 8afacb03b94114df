/**
 * The agent's side of the cluster against real things: a real server
 * in-process, `peerway-agent run --deployments` as a child process, real
 * Podman (an API service of the test's own, given to the agent as
 * DOCKER_HOST) and a real registry on loopback with a test image built
 * from scratch. A deployment is assigned, pulled, run, reported and served
 * through the tunnel; removed from the set, it is stopped; an image from a
 * registry the owner did not allow fails with the hint; a restarted agent
 * adopts its container instead of starting another; a replica whose health
 * check keeps failing is restarted by the server in a new container. Every container
 * carries `peerway.test=<run id>`, and exactly those are removed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { connectTunnel } from '@peerway/node-agent/client';
import type { PeerwayServer } from '@peerway/signaling-server';
import { TestRegistry, WEB_PORT } from '../../e2e/support/registry';
import { TEST_LABEL, podman, startTestEngine } from '../../e2e/support/podman';
import { DockerRuntime, type ContainerRecord, type PodmanService } from '../src/runtime';
import { Fixture, readAll, type AgentProcess } from './helpers';
import { until as untilTruthy } from '../../signaling-server/test/cluster-fixtures';

const execFileP = promisify(execFile);
const AGENT_BIN = join(import.meta.dirname, '../bin/peerway-agent.js');
const registry = new TestRegistry();
const runId = registry.runId;
const f = new Fixture();
const dir = mkdtempSync(join(os.tmpdir(), 'pw-deploy-'));
let engine: PodmanService;
let runtime: DockerRuntime;
let server: PeerwayServer;
let token = '';
const savedDockerHost = process.env.DOCKER_HOST;
let names = 0;

const url = () => server.config.publicUrl;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(url() + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as any };
}

/** A spec for the test image, public, checked every second. */
function spec(name: string, more: Record<string, unknown> = {}) {
  return {
    name,
    image: registry.webImage,
    port: WEB_PORT,
    replicas: 1,
    resources: { cpu: 0.25, memory: '64MiB' },
    health: { path: '/healthz', intervalS: 1, timeoutS: 1 },
    access: 'public',
    ...more,
  };
}

/** The patience of the steps of the unhealthy-restart test, which waits on several rounds of probes. */
const SLOW_MS = 90_000;

const uniqueName = () => `d${runId.slice(1)}-${++names}`;

/** The shared poll (signaling-server/test/cluster-fixtures.ts), with this file's patience. */
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 30_000) => untilTruthy(fn, what, ms);

/** The replicas of a deployment once one is in `state`. */
const replicaIn = (name: string, state: string, ms?: number) =>
  until(
    async () => {
      const d = (await api('GET', `/api/deployments/${name}`)).json;
      return d.replicas?.find((r: any) => r.state === state) && d;
    },
    `a replica of ${name} ${state}`,
    ms,
  );

const containersOf = (deployment: string): Promise<ContainerRecord[]> =>
  runtime.list({ deployment, labels: { [TEST_LABEL]: runId } });

function startAgent(home?: string, extra: string[] = []): Promise<AgentProcess> {
  return f.agent({
    serverUrl: url(),
    token,
    services: [],
    ...(home ? { home } : {}),
    waitFor: /Connected to/,
    extraArgs: [
      '--deployments',
      '--registry',
      registry.host,
      '--container-label',
      `${TEST_LABEL}=${runId}`,
      ...extra,
    ],
  });
}

beforeAll(async () => {
  await registry.start();
  await registry.buildWebImage();
  engine = await startTestEngine(dir);
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  runtime = new DockerRuntime({
    docker: new Dockerode({ socketPath: engine.socketPath }),
    allowedRegistries: [registry.host],
  });
  server = await f.server();
  ({ token } = await f.user(server));
}, 120_000);

afterAll(async () => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  try {
    await f.cleanup();
    await engine?.stop();
    await registry.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('deployments on a real agent', () => {
  it('assigned → pulled → running → reported and served; removed from the set → stopped', async () => {
    const agent = await startAgent();
    const node = /as node ([0-9a-f]{6})/.exec(agent.stdout)![1]!;
    expect(agent.stdout).toMatch(/Deployments: on .*registries 127\.0\.0\.1:\d+/);
    expect(agent.stdout).toMatch(/container runtime: podman \d/);
    // status shows what the running agent offers, its flags included
    const status = await execFileP(process.execPath, [AGENT_BIN, 'status'], {
      env: { ...process.env, PEERWAY_HOME: agent.home },
    });
    expect(status.stdout).toMatch(/deploy {4}on \(offers all CPUs, all memory\)\n/);
    expect(status.stdout).toContain(`registries ${registry.host}`);
    expect(status.stdout).toMatch(/runtime podman \d+\.\d+\.\d+ at unix:\/\//);
    const name = uniqueName();
    expect((await api('POST', '/api/deployments', spec(name))).status).toBe(201);

    const d = await replicaIn(name, 'running');
    const replica = d.replicas[0];
    expect(replica.node).toBe(node);
    const kinds = d.events.map((e: any) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['pulling', 'started']));
    expect(d.events.find((e: any) => e.kind === 'pulling').message).toContain(registry.webImage);

    const [c, ...more] = await containersOf(name);
    expect(more).toEqual([]);
    expect(c!.labels).toMatchObject({
      'peerway.node': node,
      'peerway.deployment': name,
      'peerway.allocation': replica.id,
      [TEST_LABEL]: runId,
    });
    expect(c!.running).toBe(true);

    // served through the tunnel from the container's page
    const t = await until(
      () => connectTunnel({ serverUrl: url(), service: name }).catch(() => null),
      `a tunnel to ${name}`,
    );
    try {
      const r = await t.request('GET', '/');
      expect(r.status).toBe(200);
      expect((await readAll(r.body)).toString()).toContain(`peerway test web ${runId}`);
    } finally {
      t.close();
    }

    // out of the set: stopped, removed and withdrawn
    expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
    await until(async () => (await containersOf(name)).length === 0, 'the container removed');
    await expect(connectTunnel({ serverUrl: url(), service: name })).rejects.toBeTruthy();
    await agent.kill();
  });

  it('an image from a registry the owner did not allow fails with the hint, and nothing runs', async () => {
    const agent = await startAgent();
    const name = uniqueName();
    const image = 'registry.example/team/web:1';
    expect((await api('POST', '/api/deployments', spec(name, { image }))).status).toBe(201);
    const d = await replicaIn(name, 'failed');
    expect(d.replicas[0].reason).toMatch(
      /registry\.example.*does not allow.*--registry registry\.example/,
    );
    expect(await containersOf(name)).toEqual([]);
    expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
    await agent.kill();
  });

  it('a restarted agent adopts its running container instead of starting another', async () => {
    const home = f.tmp('pw-agent-');
    let agent = await startAgent(home);
    const name = uniqueName();
    expect((await api('POST', '/api/deployments', spec(name))).status).toBe(201);
    const before = (await replicaIn(name, 'running')).replicas[0];
    const [c] = await containersOf(name);

    await agent.kill('SIGKILL');
    const restartedAt = Date.now();
    agent = await startAgent(home);
    // the new process reports the replica again (starting, then running once its check passes)
    const after = await until(async () => {
      const d = (await api('GET', `/api/deployments/${name}`)).json;
      const r = d.replicas?.[0];
      return r?.state === 'running' && r.since >= restartedAt && r;
    }, 'the replica reported running by the restarted agent');
    expect(after.id).toBe(before.id);
    const now = await containersOf(name);
    expect(now.map((x) => x.id)).toEqual([c!.id]);
    const t = await until(
      () => connectTunnel({ serverUrl: url(), service: name }).catch(() => null),
      `a tunnel to ${name} after the restart`,
    );
    try {
      const r = await t.request('GET', '/');
      expect((await readAll(r.body)).toString()).toContain(runId);
    } finally {
      t.close();
    }
    expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
    await until(async () => (await containersOf(name)).length === 0, 'the container removed');
    await agent.kill();
  });

  it(
    'a replica that stays unhealthy is restarted on its node in a new container, the reason in the events',
    async () => {
      const agent = await startAgent();
      const node = /as node ([0-9a-f]{6})/.exec(agent.stdout)![1]!;
      const name = uniqueName();
      expect((await api('POST', '/api/deployments', spec(name))).status).toBe(201);
      const before = (await replicaIn(name, 'running', SLOW_MS)).replicas[0];
      const [c] = await containersOf(name);
      // its health file gone: GET /healthz answers 404 from now on
      await podman(['exec', c!.id, '/bin/busybox', 'rm', '/www/healthz']);
      await replicaIn(name, 'unhealthy', SLOW_MS);
      // unhealthy for 3 intervals (3 s), then restarted after its backoff (1 s)
      const d = await until(
        async () => {
          const j = (await api('GET', `/api/deployments/${name}`)).json;
          const r = j.replicas?.find((x: any) => x.desired === 'run' && x.state === 'running');
          return r && r.id !== before.id && { j, r };
        },
        'a new replica running',
        SLOW_MS,
      );
      expect(d.r.node).toBe(node);
      const restarted = d.j.events.find((e: any) => e.kind === 'restarted');
      expect(restarted.message).toContain(
        `replica ${before.id} restarted on node ${node} as ${d.r.id}`,
      );
      expect(restarted.message).toMatch(
        /unhealthy for \d+ s \(GET \/healthz failed 3 times in a row .*HTTP 404/,
      );
      // the old container goes, the new one runs the image afresh (its /healthz is there)
      await until(async () => {
        const now = await containersOf(name);
        return (
          now.length === 1 &&
          now[0]!.id !== c!.id &&
          now[0]!.labels['peerway.allocation'] === d.r.id
        );
      }, 'only the new container');
      expect((await api('DELETE', `/api/deployments/${name}`)).status).toBe(200);
      await until(async () => (await containersOf(name)).length === 0, 'the container removed');
      await agent.kill();
    },
    4 * SLOW_MS,
  );
});
