/**
 * The container connector against real Podman (its Docker API service on a
 * socket of the test's own) and a real loopback registry, with the busybox
 * image the e2e support builds (FROM scratch, static busybox). Each job's
 * container is made, run once and removed; everything carries
 * `peerway.test=<run id>` and is removed at the end, also on failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import pino from 'pino';
import { parseJobInput } from '@peerway/protocol';
import { TestRegistry } from '../../e2e/support/registry';
import { TEST_LABEL, startTestEngine } from '../../e2e/support/podman';
import { DockerRuntime, type PodmanService } from '../src/runtime';
import { ContainerConnector, LABEL_JOB } from '../src/jobs/connectors/container';
import type { JobContext } from '../src/jobs/connectors/types';
import { JobError } from '../src/jobs/errors';
import type { ContainerConnectorSettings } from '../src/jobs/settings';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;

let n = 0;
const ctx = (signal = new AbortController().signal): JobContext => ({
  id: `job${++n}`,
  attempt: 1,
  requirements: { models: [], labels: {} },
  signal,
  progress: () => undefined,
  log,
});
const input = (raw: unknown) => {
  const r = parseJobInput('container', raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.input;
};
const sh = (script: string) => ({ command: ['/bin/busybox', 'sh', '-c', script] });

describe('the container connector over Podman', () => {
  const registry = new TestRegistry();
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-jobs-container-'));
  let engine: PodmanService;
  let docker: Dockerode;
  let image = '';
  let settings: ContainerConnectorSettings;
  const connector = (more: Partial<ContainerConnectorSettings> = {}) =>
    new ContainerConnector({
      settings: { ...settings, ...more },
      runtime: new DockerRuntime({ docker, allowedRegistries: settings.registries }),
      docker,
      node: 'test01',
      extraLabels: { [TEST_LABEL]: registry.runId },
    });
  const left = async () =>
    (
      await docker.listContainers({
        all: true,
        filters: { label: [`${TEST_LABEL}=${registry.runId}`] },
      })
    ).length;

  beforeAll(async () => {
    await registry.start();
    ({ image } = await registry.buildWebImage());
    engine = await startTestEngine(dir);
    docker = new Dockerode({ socketPath: engine.socketPath });
    settings = {
      images: [`${registry.host}/peerway-test/web:*`],
      registries: [registry.host],
      cpuCores: 0.5,
      memoryBytes: 64 * MiB,
      network: false,
      maxLogBytes: 4096,
      maxOutBytes: 1 * MiB,
    };
  });
  afterAll(async () => {
    try {
      await engine?.stop();
      await registry.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the images it allows', async () => {
    expect((await connector().describe()).images).toEqual(settings.images);
  });

  it('pulls, runs once with the files in /in and stdin, returns exit code, output and /out', async () => {
    const out = await connector().run(
      input({
        image,
        ...sh(
          'cat /in/data/a.txt; echo err-line >&2; cat > /out/stdin.txt; ' +
            'echo "$GREETING" > /out/greeting.txt; ' +
            'mkdir -p /out/deep/er && cp /in/bin.dat /out/deep/er/copy.dat; exit 3',
        ),
        env: { GREETING: 'hello from env' },
        stdin: 'from stdin\n',
        files: {
          'data/a.txt': 'file content\n',
          'bin.dat': `base64:${Buffer.from([0, 1, 2, 255]).toString('base64')}`,
        },
      }),
      ctx(),
    );
    expect(out.output).toMatchObject({
      exitCode: 3,
      stdout: 'file content\n',
      stderr: 'err-line\n',
    });
    const files = Object.fromEntries(out.files!.map((f) => [f.name, f]));
    expect(Object.keys(files).sort()).toEqual(['deep__er__copy.dat', 'greeting.txt', 'stdin.txt']);
    expect(files['stdin.txt']!.data.toString()).toBe('from stdin\n');
    expect(files['greeting.txt']!.data.toString()).toBe('hello from env\n');
    expect(files['greeting.txt']!.contentType).toMatch(/^text\/plain/);
    expect([...files['deep__er__copy.dat']!.data]).toEqual([0, 1, 2, 255]);
    expect((out.output as { files: unknown[] }).files).toContainEqual({
      path: 'deep/er/copy.dat',
      name: 'deep__er__copy.dat',
    });
    expect(await left()).toBe(0);
  });

  // Only the default is run here: a container on Podman's bridge would be
  // NATed to this machine's real interfaces, which tests must never do (and
  // its netavark rules race the NAT lab's iptables in a parallel run: CI
  // failed on it once). `network: true` asks the engine for 'bridge'.
  it('runs with no network at all unless configured', async () => {
    const none = await connector().run(input({ image, ...sh('ls /sys/class/net') }), ctx());
    expect((none.output as { stdout: string }).stdout.trim()).toBe('lo');
  });

  it('returns all of a long output (Podman cuts a followed log of an exited container short)', async () => {
    // podman#21914: `logs --follow` on a stopped container with the k8s-file
    // driver can end at a random place. Seen once under a loaded full run
    // (the 4096-byte bound below came back not reached); not reproduced on a
    // quiet machine in 30 CLI runs, so this guards, it does not prove.
    const lines = 4000;
    for (let run = 0; run < 4; run++) {
      const r = await connector({ maxLogBytes: MiB }).run(
        input({ image, ...sh(`i=0; while [ $i -lt ${lines} ]; do echo line$i; i=$((i+1)); done`) }),
        ctx(),
      );
      const out = (r.output as { stdout: string }).stdout.trimEnd().split('\n');
      expect(out.length).toBe(lines);
      expect(out.at(-1)).toBe(`line${lines - 1}`);
    }
  }, 60_000);

  it('bounds stdout, and refuses /out over its limit for good', async () => {
    const big = await connector().run(
      input({ image, ...sh('i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done') }),
      ctx(),
    );
    expect(big.output).toMatchObject({ stdoutTruncated: true });
    expect((big.output as { stdout: string }).stdout.length).toBe(4096);
    const err = (await connector({ maxOutBytes: 1000 })
      .run(
        input({
          image,
          ...sh('i=0; while [ $i -lt 200 ]; do echo 0123456789; i=$((i+1)); done > /out/x'),
        }),
        ctx(),
      )
      .catch((e: unknown) => e)) as JobError;
    expect(err).toBeInstanceOf(JobError);
    expect(err).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/more than 1000 bytes in \/out/),
    });
    expect(await left()).toBe(0);
  });

  it('refuses an image its owner does not allow, for good, and pulls from no other registry', async () => {
    const err = (await connector()
      .run(input({ image: `${registry.host}/peerway-test/other:1` }), ctx())
      .catch((e: unknown) => e)) as JobError;
    expect(err).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/does not allow image/),
    });
    const reg = (await connector({
      images: ['docker.io/library/busybox:*'],
      registries: [registry.host],
    })
      .run(input({ image: 'docker.io/library/busybox:1' }), ctx())
      .catch((e: unknown) => e)) as JobError;
    expect(reg).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/does not allow/),
    });
  });

  it('kills and removes the container of an aborted job', async () => {
    const abort = new AbortController();
    const c = ctx(abort.signal);
    const run = connector().run(input({ image, ...sh('sleep 60') }), c);
    await expect
      .poll(
        async () =>
          (await docker.listContainers({ filters: { label: [`${LABEL_JOB}=${c.id}`] } })).length,
        { timeout: 20_000 },
      )
      .toBe(1);
    const t0 = Date.now();
    abort.abort('cancelled by its submitter');
    const err = (await run.catch((e: unknown) => e)) as JobError;
    expect(err.message).toBe('cancelled by its submitter');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await left()).toBe(0);
  });
});
