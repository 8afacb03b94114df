/**
 * The reconciler over real Podman, the server played by the test (it hands
 * the reconciler whole sets, as `allocations` does): containers left by an
 * earlier run are adopted when still listed and removed when not; with
 * deployments off nothing runs and every replica is refused with what to
 * do; a spec that fails the node's own check is refused with its errors;
 * healthy replicas are served, one announcement per deployment, and an
 * unhealthy one is withdrawn. Every
 * container carries `peerway.test=<run id>`, and exactly those are removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import pino from 'pino';
import {
  parseDeploymentSpec,
  type AllocationAssignment,
  type AllocationReport,
} from '@peerway/protocol';
import { TestRegistry, WEB_PORT } from '../../e2e/support/registry';
import { TEST_LABEL, podman, startTestEngine } from '../../e2e/support/podman';
import { DockerRuntime, type PodmanService } from '../src/runtime';
import { DEPLOYMENTS_OFF, Reconciler } from '../src/deploy';
import type { DeployedService } from '../src/agent';

const registry = new TestRegistry();
const runId = registry.runId;
const dir = mkdtempSync(join(os.tmpdir(), 'pw-reconcile-'));
const node = runId.slice(1, 7);
let engine: PodmanService;
let runtime: DockerRuntime;
const made: Reconciler[] = [];

function assignment(
  id: string,
  name: string,
  more: Record<string, unknown> = {},
): AllocationAssignment {
  const r = parseDeploymentSpec({
    name,
    image: registry.webImage,
    port: WEB_PORT,
    resources: { cpu: 0.1, memory: '32MiB' },
    health: { path: '/healthz', intervalS: 1, timeoutS: 1 },
    ...more,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return { id: `${runId}-${id}`, deployment: name, spec: r.spec, version: 1 };
}

/** A reconciler as one agent run makes it, with what it reports and serves. */
function reconciler(enabled = true) {
  const reports: AllocationReport[] = [];
  const served: DeployedService[][] = [];
  const r = new Reconciler({
    runtime,
    node,
    settings: { enabled, registries: [registry.host] },
    extraLabels: { [TEST_LABEL]: runId },
    report: (list) => reports.push(...list),
    serve: (list) => served.push(list),
    stopTimeoutS: 1,
    log: pino({ level: process.env.E2E_DEBUG ? 'debug' : 'silent' }),
  });
  made.push(r);
  const stateOf = (id: string) => r.states().get(`${runId}-${id}`)?.state;
  const until = async (id: string, state: string) => {
    const deadline = Date.now() + 30_000;
    while (stateOf(id) !== state) {
      if (Date.now() > deadline)
        throw new Error(`${id} is ${stateOf(id)}, not ${state}: ${JSON.stringify(reports)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  return { r, reports, served, stateOf, until };
}

const mine = async () =>
  (await runtime.list({ node, labels: { [TEST_LABEL]: runId } })).map((c) => ({
    id: c.id,
    allocation: c.peerway?.allocation,
  }));

beforeAll(async () => {
  await registry.start();
  await registry.buildWebImage();
  engine = await startTestEngine(dir);
  runtime = new DockerRuntime({
    docker: new Dockerode({ socketPath: engine.socketPath }),
    allowedRegistries: [registry.host],
  });
}, 120_000);

afterAll(async () => {
  for (const r of made) r.detach();
  try {
    await engine?.stop();
    await registry.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('the reconciler', () => {
  it('serves healthy replicas once per deployment; a later run adopts what is listed and removes the rest', async () => {
    const first = reconciler();
    const a = assignment('a', `w${runId}`, { access: 'public' });
    const b = assignment('b', `w${runId}`, { access: 'public' });
    const c = assignment('c', `x${runId}`);
    await first.r.apply([a, b, c]);
    // the whole set is reported after each set
    expect(first.reports.slice(0, 3).map((x) => x.state)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    await Promise.all([
      first.until('a', 'running'),
      first.until('b', 'running'),
      first.until('c', 'running'),
    ]);
    expect(first.reports.map((x) => x.state)).toEqual(
      expect.arrayContaining(['pulling', 'starting', 'running']),
    );
    const serving = first.served.at(-1)!;
    expect(serving.map((s) => [s.name, s.public])).toEqual([
      [`w${runId}`, true],
      [`x${runId}`, false],
    ]);
    const before = await mine();
    expect(before).toHaveLength(3);

    // the agent goes away and comes back: a new run, the same node
    first.r.detach();
    const second = reconciler();
    await second.r.apply([a, c]);
    await second.r.settled();
    await Promise.all([second.until('a', 'running'), second.until('c', 'running')]);
    const after = await mine();
    expect(after.map((x) => x.allocation).sort()).toEqual([a.id, c.id].sort());
    // adopted, not started again: the same containers
    for (const x of after) expect(before.find((y) => y.allocation === x.allocation)?.id).toBe(x.id);
    expect(second.reports.filter((x) => x.id === a.id).map((x) => x.state)).not.toContain(
      'pulling',
    );

    // removed from the set: stopped, removed, withdrawn
    await second.r.apply([c]);
    await second.r.settled();
    expect((await mine()).map((x) => x.allocation)).toEqual([c.id]);
    expect(second.served.at(-1)!.map((s) => s.name)).toEqual([`x${runId}`]);
    await second.r.apply([]);
    await second.r.settled();
    expect(await mine()).toEqual([]);
    expect(second.served.at(-1)).toEqual([]);
  });

  it('withdraws a deployment whose replica turns unhealthy, and reports it', async () => {
    const x = reconciler();
    const a = assignment('sick', `s${runId}`);
    await x.r.apply([a]);
    await x.until('sick', 'running');
    expect(x.served.at(-1)!.map((s) => s.name)).toEqual([`s${runId}`]);
    const [c] = await runtime.list({ allocation: a.id });
    await podman(['exec', c!.id, '/bin/busybox', 'rm', '/www/healthz']);
    await x.until('sick', 'unhealthy');
    expect(x.reports.at(-1)).toMatchObject({ id: a.id, state: 'unhealthy' });
    expect(x.reports.at(-1)!.reason).toMatch(/GET \/healthz failed 3 times in a row .*HTTP 404/);
    expect(x.served.at(-1)).toEqual([]);
    await x.r.apply([]);
    await x.r.settled();
    expect(await mine()).toEqual([]);
  });

  it('with deployments off runs nothing and refuses each replica with what to do', async () => {
    const on = reconciler();
    const a = assignment('off', `o${runId}`);
    await on.r.apply([a]);
    await on.until('off', 'running');
    on.r.detach();

    const off = reconciler(false);
    await off.r.apply([a, assignment('off2', `p${runId}`)]);
    await off.r.settled();
    expect(off.reports).toEqual([
      { id: a.id, state: 'failed', reason: DEPLOYMENTS_OFF },
      { id: `${runId}-off2`, state: 'failed', reason: DEPLOYMENTS_OFF },
    ]);
    expect(DEPLOYMENTS_OFF).toBe(
      'deployments are not enabled on this node (peerway-agent run --deployments)',
    );
    // what an earlier run with deployments on left is gone too
    expect(await mine()).toEqual([]);
    expect(off.served).toEqual([]);
  });

  it('refuses a spec that fails its own check, with the field and the problem', async () => {
    const x = reconciler();
    const bad = {
      ...assignment('bad', `b${runId}`),
      spec: { ...assignment('bad', `b${runId}`).spec, port: 0 },
    };
    const renamed = { ...assignment('renamed', `r${runId}`), deployment: `q${runId}` };
    await x.r.apply([bad, renamed]);
    await x.r.settled();
    expect(x.stateOf('bad')).toBe('failed');
    expect(x.r.states().get(bad.id)?.reason).toMatch(
      /the spec does not pass this node's check: port: 0 is out of range/,
    );
    expect(x.r.states().get(renamed.id)?.reason).toMatch(
      new RegExp(`for deployment "q${runId}" but its spec is named "r${runId}"`),
    );
    expect(await mine()).toEqual([]);
  });
});
