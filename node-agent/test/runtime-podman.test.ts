/**
 * The container runtime against real Podman (its Docker-compatible API
 * service, started here on a socket of the test's own) and a real registry
 * on loopback, with a test image built from scratch around static busybox.
 * Every container and image carries `peerway.test=<run id>`, and exactly
 * those are removed at the end, also when a test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { TestRegistry, WEB_PORT } from '../../e2e/support/registry';
import { TEST_LABEL, startTestEngine } from '../../e2e/support/podman';
import {
  DockerRuntime,
  Replica,
  RuntimeError,
  type HealthSpec,
  type PeerwayLabels,
  type PodmanService,
  type ReplicaStatus,
  type RunSpec,
} from '../src/runtime';

const MiB = 1024 * 1024;
const FAST_HEALTH: HealthSpec = {
  path: '/healthz',
  intervalMs: 200,
  timeoutMs: 1_000,
  startPeriodMs: 1_000,
  unhealthyAfter: 3,
  startIntervalMs: 100,
};

function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Resolves with the connect error code, or 'connected'. */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('container runtime over Podman', () => {
  const registry = new TestRegistry();
  const runId = registry.runId;
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-runtime-'));
  const timings: Record<string, number> = {};
  const replicas: Replica[] = [];
  let engine: PodmanService;
  let docker: Dockerode;
  let runtime: DockerRuntime;
  let image = '';

  const labels = (allocation: string): PeerwayLabels => ({
    node: 'test01',
    deployment: `web-${runId}`,
    allocation: `${runId}-${allocation}`,
  });
  const spec = (allocation: string, more: Partial<RunSpec> = {}): RunSpec => ({
    image,
    port: WEB_PORT,
    labels: labels(allocation),
    extraLabels: { [TEST_LABEL]: runId },
    stopTimeoutS: 2,
    ...more,
  });
  const replica = (
    s: RunSpec,
    health: HealthSpec = FAST_HEALTH,
    onStatus?: (st: ReplicaStatus) => void,
  ): Replica => {
    const r = new Replica({ runtime, spec: s, health, onStatus });
    replicas.push(r);
    return r;
  };
  const connect = (socketPath: string) => {
    docker = new Dockerode({ socketPath });
    runtime = new DockerRuntime({ docker, where: socketPath, allowedRegistries: [registry.host] });
  };

  beforeAll(async () => {
    let t = performance.now();
    await registry.start();
    timings['registry start'] = Math.round(performance.now() - t);
    const built = await registry.buildWebImage();
    image = built.image;
    timings['image build'] = built.buildMs;
    timings['image push'] = built.pushMs;
    t = performance.now();
    engine = await startTestEngine(dir);
    timings['podman service start'] = Math.round(performance.now() - t);
    connect(engine.socketPath);
  });

  afterAll(async () => {
    for (const r of replicas) r.detach();
    try {
      await engine?.stop();
      await registry.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    console.table(Object.entries(timings).map(([step, ms]) => ({ step, ms })));
  });

  it('detects Podman and its version', async () => {
    const d = await runtime.detect();
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.runtime.name).toBe('podman');
    expect(d.runtime.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('pulls the image from the loopback registry over plain HTTP', async () => {
    expect(await runtime.hasImage(image)).toBe(false);
    const { ms } = await runtime.pull(image);
    timings.pull = ms;
    expect(await runtime.hasImage(image)).toBe(true);
  });

  it('runs with limits and labels on 127.0.0.1 only, serves HTTP, and turns running when healthy', async () => {
    const r = replica(spec('limits', { memoryBytes: 64 * MiB, cpu: 0.5, readOnlyRootFs: true }));
    const t = performance.now();
    const started = await r.start();
    expect(started.state, started.reason).toBe('starting');
    const status = await r.until('running', 'unhealthy', 'exited', 'failed');
    timings['start→healthy (replica)'] = Math.round(performance.now() - t);
    timings['start→healthy (after create)'] = r.timings.startToHealthyMs ?? -1;
    expect(status.state, status.reason).toBe('running');
    expect(status.reason).toMatch(/HTTP 200/);

    const c = await docker.getContainer(r.container!.id).inspect();
    expect(c.HostConfig.Memory).toBe(64 * MiB);
    expect(c.HostConfig.NanoCpus).toBe(500_000_000);
    expect(c.HostConfig.Privileged).toBe(false);
    expect(c.HostConfig.NetworkMode).not.toBe('host');
    expect(c.HostConfig.ReadonlyRootfs).toBe(true);
    expect(c.Config.Labels).toMatchObject({
      'peerway.node': 'test01',
      'peerway.deployment': `web-${runId}`,
      'peerway.allocation': `${runId}-limits`,
      [TEST_LABEL]: runId,
    });
    const bindings = c.NetworkSettings.Ports[`${WEB_PORT}/tcp`] ?? [];
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) expect(b.HostIp).toBe('127.0.0.1');
    const port = r.container!.hostPort!;
    expect(Number(bindings[0]!.HostPort)).toBe(port);

    const res = await get(port, '/');
    expect(res.status).toBe(200);
    expect(res.body).toContain(runId);
    // the same port on the machine's other addresses is closed
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    for (const addr of others) expect(await tryConnect(addr, port)).toBe('ECONNREFUSED');

    const t2 = performance.now();
    await r.stop();
    timings.stop = Math.round(performance.now() - t2);
    expect(r.status.state).toBe('exited');
    await expect(runtime.inspect(r.container!.id)).rejects.toMatchObject({ code: 'not_found' });
    expect(await tryConnect('127.0.0.1', port)).toBe('ECONNREFUSED');
    // an init process makes busybox httpd stop on SIGTERM, not after the stop timeout
    expect(timings.stop).toBeLessThan(2_000);
  });

  it('turns unhealthy when the health path fails', async () => {
    const r = replica(spec('unhealthy'), { ...FAST_HEALTH, path: '/nope' });
    expect((await r.start()).state).toBe('starting');
    const status = await r.until('running', 'unhealthy', 'exited', 'failed');
    expect(status.state, status.reason).toBe('unhealthy');
    expect(status.reason).toMatch(/GET \/nope .*HTTP 404/);
    await r.stop();
  });

  it('sees a container that exits as exited, with its code and last output', async () => {
    const r = replica(
      spec('exits', {
        command: ['/bin/busybox', 'sh', '-c', 'echo bye from the app; sleep 1; exit 3'],
      }),
      // nothing listens: the start period outlasts the app, so its exit is what it reports
      { ...FAST_HEALTH, startPeriodMs: 30_000 },
    );
    const watched: number[] = [];
    const w = await runtime.watch({ allocation: `${runId}-exits` }, (e) => {
      if (e.type === 'exited' && e.exitCode !== null) watched.push(e.exitCode);
    });
    try {
      expect((await r.start()).state).toBe('starting');
      const status = await r.until('exited', 'failed', 'running', 'unhealthy');
      expect(status.state, status.reason).toBe('exited');
      expect(status.exitCode).toBe(3);
      expect(status.reason).toMatch(/exited with code 3.*bye from the app/);
      expect(watched).toEqual([3]);
      expect(await runtime.logs(r.container!.id, 10)).toContain('bye from the app');
    } finally {
      w.close();
    }
    await r.stop();
  });

  it('adopts its labelled containers after the runtime module restarts, instead of starting duplicates', async () => {
    const first = replica(spec('adopt'));
    await first.start();
    expect((await first.until('running', 'unhealthy', 'exited', 'failed')).state).toBe('running');
    const id = first.container!.id;
    const port = first.container!.hostPort!;
    // the agent goes away: it stops watching, the engine's API service ends, the container stays
    first.detach();
    await engine.stop();
    expect((await get(port, '/healthz')).status).toBe(200);

    const t = performance.now();
    engine = await startTestEngine(dir);
    connect(engine.socketPath);
    const found = await runtime.list({ labels: { [TEST_LABEL]: runId } });
    timings['restart: service up + list'] = Math.round(performance.now() - t);
    const mine = found.filter((c) => c.peerway?.allocation === `${runId}-adopt`);
    expect(mine.map((c) => c.id)).toEqual([id]);
    expect(mine[0]!.running).toBe(true);
    expect(mine[0]!.hostPort).toBe(port);

    const adopted = replica(spec('adopt'));
    expect((await adopted.adopt(mine[0]!)).state).toBe('starting');
    expect((await adopted.until('running', 'unhealthy', 'exited', 'failed')).state).toBe('running');
    // starting the same allocation again is refused, not duplicated
    await expect(runtime.run(spec('adopt'))).rejects.toMatchObject({ code: 'conflict' });
    await adopted.stop();
    expect(await runtime.list({ allocation: `${runId}-adopt` })).toEqual([]);
  });

  it('refuses an image from a registry the owner did not allow, before pulling or running', async () => {
    const other = `127.0.0.1:${registry.port === 1 ? 2 : 1}/peerway-test/web:1`;
    await expect(runtime.pull(other)).rejects.toMatchObject({ code: 'registry_not_allowed' });
    const r = replica(spec('refused', { image: 'registry.example/team/web:1' }));
    const status = await r.start();
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(
      /registry\.example.*does not allow.*--registry registry\.example/,
    );
    expect(await runtime.list({ allocation: `${runId}-refused` })).toEqual([]);
  });

  it('fails with a clear reason when the image is not in the registry', async () => {
    const states: string[] = [];
    const r = replica(
      spec('missing', { image: `${registry.host}/peerway-test/absent:1` }),
      FAST_HEALTH,
      (st) => states.push(st.state),
    );
    const status = await r.start();
    expect(states).toEqual(['pulling', 'failed']);
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/absent:1 was not found in registry 127\.0\.0\.1:\d+/);
    await expect(runtime.pull(`${registry.host}/peerway-test/absent:1`)).rejects.toBeInstanceOf(
      RuntimeError,
    );
    expect(await runtime.list({ allocation: `${runId}-missing` })).toEqual([]);
  });
});
