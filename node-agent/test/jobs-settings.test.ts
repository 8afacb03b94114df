/**
 * The job settings of `peerway-agent run` (flags over config.json's `jobs`
 * key), with their errors in words, and the real bin started as a worker
 * against the stand-in server: `--jobs --connector simulation` makes it
 * announce itself and run a lease; `--jobs` with nothing to run refuses to
 * start, saying what to add.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentConfigSchema } from '../src/home';
import { jobSettings } from '../src/jobs/settings';
import { FakeJobServer } from './support/jobs-server';
import { Fixture } from './helpers';

const AGENT_BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');
const cfg = (jobs?: unknown) => AgentConfigSchema.parse(jobs === undefined ? {} : { jobs });

describe('job settings', () => {
  it('are off without --jobs, and take the configured connectors', () => {
    expect(jobSettings(cfg()).enabled).toBe(false);
    const s = jobSettings(
      cfg({
        enabled: true,
        concurrency: 3,
        connectors: {
          simulation: {},
          http: { services: ['api'] },
          comfyui: { url: 'http://127.0.0.1:8188/' },
          container: { images: ['127.0.0.1:5000/batch:*'], memory: '256MiB', cpu: '500m' },
        },
      }),
    );
    expect(s).toMatchObject({
      enabled: true,
      concurrency: 3,
      connectors: {
        simulation: {},
        http: { services: ['api'] },
        comfyui: { url: 'http://127.0.0.1:8188' },
        container: {
          images: ['127.0.0.1:5000/batch:*'],
          registries: ['127.0.0.1:5000'],
          memoryBytes: 256 * 1024 * 1024,
          cpuCores: 0.5,
          network: false,
        },
      },
    });
  });

  it('lets --connector pick and set connectors, over the file', () => {
    const s = jobSettings(cfg({ connectors: { http: { services: ['api'] }, simulation: {} } }), {
      jobs: true,
      jobConcurrency: '4',
      connector: ['http', 'container=127.0.0.1:5000/a:*,127.0.0.1:6000/b:1'],
    });
    expect(Object.keys(s.connectors).sort()).toEqual(['container', 'http']);
    expect(s.connectors.container?.registries).toEqual(['127.0.0.1:5000', '127.0.0.1:6000']);
    expect(s.concurrency).toBe(4);
  });

  it('says what is wrong, in words', () => {
    const bad = (flags: Parameters<typeof jobSettings>[1], jobs?: unknown) => () =>
      jobSettings(cfg(jobs), flags);
    expect(bad({ jobs: true })).toThrow(
      /no connector to run jobs with: add one, --connector simulation/,
    );
    expect(bad({ jobs: true, connector: ['gpu'] })).toThrow(
      /"gpu" is not a connector \(known: http, container, comfyui, simulation\)/,
    );
    expect(bad({ jobs: true, connector: ['http'] })).toThrow(
      /name the declared services it may call/,
    );
    expect(bad({ jobs: true, connector: ['comfyui=ftp://x'] })).toThrow(/must be http or https/);
    expect(bad({ jobs: true, connector: ['container=busybox:*'] })).toThrow(/names no registry/);
    expect(bad({ jobs: true, connector: ['simulation'], jobConcurrency: '0' })).toThrow(
      /--job-concurrency 0: a whole number of jobs from 1 to 256/,
    );
    expect(() => cfg({ connectors: { container: { images: [] } } })).toThrow(/at least one image/);
  });
});

describe('peerway-agent run --jobs', () => {
  const f = new Fixture();
  afterAll(() => f.cleanup());

  const run = (home: string, url: string, args: string[]) => {
    const p = spawn(process.execPath, [AGENT_BIN, 'run', '--server', url, ...args], {
      env: { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    f.onCleanup(async () => {
      if (p.exitCode === null) {
        p.kill('SIGKILL');
        await exited;
      }
    });
    return { p, exited, out: () => out };
  };

  it('refuses to start with nothing to run jobs with', async () => {
    const home = f.tmp('pw-jobs-home-');
    const r = run(home, 'http://127.0.0.1:9', ['--jobs']);
    expect(await r.exited).toBe(1);
    expect(r.out()).toMatch(/--jobs: this node has no connector to run jobs with/);
  });

  it('refuses an http connector for a service the node does not declare', async () => {
    const home = f.tmp('pw-jobs-home-');
    const r = run(home, 'http://127.0.0.1:9', ['--jobs', '--connector', 'http=api']);
    expect(await r.exited).toBe(1);
    expect(r.out()).toMatch(/this node declares no such service .*--service api=TARGET/);
  });

  it('works as a worker with the settings of its config file', async () => {
    const server = new FakeJobServer();
    await server.start();
    f.onCleanup(() => server.close());
    const home = mkdtempSync(join(tmpdir(), 'pw-jobs-home-'));
    f.onCleanup(() => rmSync(home, { recursive: true, force: true }));
    writeFileSync(
      join(home, 'config.json'),
      JSON.stringify({ jobs: { enabled: true, concurrency: 2, connectors: { simulation: {} } } }),
    );
    const r = run(home, server.url, []);
    const w = await server.next('worker', () => true, { timeoutMs: 30_000 });
    expect(w.capabilities).toEqual({
      concurrency: 2,
      connectors: [{ type: 'simulation', services: [], models: [], images: [] }],
    });
    await server.next('job-pull');
    server.send({
      type: 'job-lease',
      id: 'cli1',
      attempt: 1,
      jobType: 'simulation',
      input: { output: { from: 'the bin' } },
      requirements: { models: [], labels: {} },
      timeoutS: 10,
      leaseMs: 30_000,
      leaseToken: 'tok-cli1',
    });
    expect(await server.next('job-result', (m) => m.id === 'cli1')).toMatchObject({
      output: { from: 'the bin' },
    });
    expect(r.out()).toMatch(/Jobs: on, 2 at once, connectors: simulation/);
  });
});
