/**
 * A container job end to end: the real agent bin (`--jobs --connector
 * container=<registry>/peerway-test/web:*`) on real Podman, the busybox
 * image from a loopback registry, the real server's broker. The job's
 * input files reach /in, what it writes to /out comes back as the job's
 * files through GET /api/jobs/:id/files/:name, and no container is left.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { parseConfig, startPeerwayServer, type PeerwayServer } from '@peerway/signaling-server';
import { TestRegistry } from '../../e2e/support/registry';
import { startTestEngine } from '../../e2e/support/podman';
import type { PodmanService } from '../src/runtime';
import { LABEL_JOB } from '../src/jobs/connectors/container';
import { Fixture } from './helpers';

const f = new Fixture();
const registry = new TestRegistry();
const dir = mkdtempSync(join(os.tmpdir(), 'pw-jobs-bc-'));
let engine: PodmanService;
let server: PeerwayServer;
let token = '';
let image = '';

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as any };
};

beforeAll(async () => {
  await registry.start();
  ({ image } = await registry.buildWebImage());
  engine = await startTestEngine(dir);
  server = await startPeerwayServer(
    parseConfig({ port: 0, dataDir: f.tmp('pw-jobs-server-'), heartbeatIntervalMs: 1_000 }),
  );
  f.onCleanup(() => server.close());
  ({ token } = await f.user(server));
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  try {
    await f.agent({
      serverUrl: server.url,
      token,
      services: [],
      waitFor: /Connected to/,
      extraArgs: ['--jobs', '--connector', `container=${registry.host}/peerway-test/web:*`],
    });
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});
afterAll(async () => {
  try {
    await f.cleanup();
    await engine?.stop();
    await registry.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('runs a container job and serves what it left in /out', async () => {
  const sub = await call('POST', '/api/jobs', {
    type: 'container',
    input: {
      image,
      command: [
        '/bin/busybox',
        'sh',
        '-c',
        'mkdir -p /out/r && tr a-z A-Z < /in/words.txt > /out/r/upper.txt; echo done',
      ],
      files: { 'words.txt': 'hello jobs\n' },
    },
  });
  expect(sub.status).toBe(202);
  const deadline = Date.now() + 90_000;
  let job: any;
  for (;;) {
    job = (await call('GET', `/api/jobs/${sub.json.id}`)).json;
    if (['succeeded', 'dead'].includes(job.state)) break;
    if (Date.now() > deadline) throw new Error(`still ${job.state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(job.error ?? null).toBeNull();
  expect(job.output).toMatchObject({
    exitCode: 0,
    stdout: 'done\n',
    files: [{ path: 'r/upper.txt', name: 'r__upper.txt' }],
  });
  expect(job.files).toMatchObject([
    { name: 'r__upper.txt', contentType: 'text/plain; charset=utf-8' },
  ]);
  const res = await fetch(`${server.url}${job.files[0].url}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(await res.text()).toBe('HELLO JOBS\n');
  const docker = new Dockerode({ socketPath: engine.socketPath });
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_JOB}=${sub.json.id}`] },
  });
  expect(left).toHaveLength(0);
});
