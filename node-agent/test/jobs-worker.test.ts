/**
 * The agent as a worker over a real WebSocket: a real Agent with the jobs
 * worker (simulation connector) connects to a stand-in server that speaks
 * the agent protocol (./support/jobs-server.ts) and plays the broker. What
 * the worker says after welcome, how it runs, reports, refuses, cancels,
 * times out and heartbeats a lease, how it uploads with the lease token,
 * and what it does with its jobs when the connection drops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { randomBytes } from 'node:crypto';
import type { ServerToAgent } from '@peerway/protocol';
import { generateIdentity } from '@peerway/protocol/node';
import { Agent } from '../src/agent';
import { JobsNode, SimulationConnector } from '../src/jobs';
import { FakeJobServer } from './support/jobs-server';

const log = pino({ level: process.env.E2E_DEBUG ? 'debug' : 'silent' });
const CONCURRENCY = 2;

type Lease = Extract<ServerToAgent, { type: 'job-lease' }>;
const lease = (over: Partial<Lease> & { id: string }): Lease => ({
  type: 'job-lease',
  attempt: 1,
  jobType: 'simulation',
  input: {},
  requirements: { models: [], labels: {} },
  timeoutS: 60,
  leaseMs: 30_000,
  leaseToken: `tok-${randomBytes(8).toString('hex')}`,
  ...over,
});
const jobId = () => `j-${randomBytes(6).toString('hex')}`;

describe('the jobs worker', () => {
  const server = new FakeJobServer();
  let agent: Agent;
  let jobs: JobsNode;

  beforeAll(async () => {
    await server.start();
    let a: Agent | null = null;
    jobs = new JobsNode({
      settings: { enabled: true, concurrency: CONCURRENCY, connectors: { simulation: {} } },
      connectors: [new SimulationConnector()],
      serverUrl: server.url,
      send: (m) => a?.conn.send(m),
      resources: () => null,
      log,
    });
    a = agent = new Agent({
      serverUrl: server.url,
      identity: generateIdentity(),
      name: 'worker',
      services: [],
      log,
      jobs,
    });
    agent.start();
    await server.next('job-pull');
  });
  afterAll(async () => {
    agent.stop();
    await server.close();
  });

  it('says after welcome what it can do, then how many slots are free', () => {
    const types = server.inbox.map((m) => m.type);
    const w = types.indexOf('worker');
    expect(w).toBeGreaterThan(types.indexOf('auth'));
    expect(types.indexOf('job-pull')).toBeGreaterThan(w);
    expect(server.all('worker')[0]!.capabilities).toEqual({
      concurrency: CONCURRENCY,
      connectors: [{ type: 'simulation', services: [], models: [], images: [] }],
    });
    expect(server.all('job-pull')[0]!.free).toBe(CONCURRENCY);
  });

  it('runs a lease: started, progress, result, then its slot is free again', async () => {
    const id = jobId();
    const from = server.inbox.length;
    server.send(lease({ id, input: { delayMs: 300, progressSteps: 3, output: { ok: 42 } } }));
    await server.next('job-started', (m) => m.id === id, { from });
    const result = await server.next('job-result', (m) => m.id === id, { from });
    expect(result).toMatchObject({ attempt: 1, output: { ok: 42 }, outputUploaded: false });
    const progress = server.all('job-progress').filter((m) => m.id === id);
    expect(progress.at(-1)).toMatchObject({ value: 3, max: 3 });
    const pull = await server.next('job-pull', () => true, { from: server.inbox.indexOf(result) });
    expect(pull.free).toBe(CONCURRENCY);
  });

  it('fails a bad lease for good, with the reason, and keeps working', async () => {
    const from = server.inbox.length;
    const noConnector = jobId();
    server.send(
      lease({
        id: noConnector,
        jobType: 'http',
        input: { path: '/' },
        requirements: { service: 'api', models: [], labels: {} },
      }),
    );
    const badInput = jobId();
    server.send(lease({ id: badInput, input: { delayMs: -1 } }));
    const unmet = jobId();
    server.send(lease({ id: unmet, requirements: { models: [], labels: { region: 'moon' } } }));
    expect(await server.next('job-failed', (m) => m.id === noConnector, { from })).toMatchObject({
      retryable: false,
      error: expect.stringMatching(/no http connector/),
    });
    expect(await server.next('job-failed', (m) => m.id === badInput, { from })).toMatchObject({
      retryable: false,
      error: expect.stringMatching(/input\.delayMs/),
    });
    // another worker may have the label: retryable, and the worker says again what it has
    expect(await server.next('job-failed', (m) => m.id === unmet, { from })).toMatchObject({
      retryable: true,
      error: expect.stringMatching(/label region/),
    });
    expect(
      server.all('job-started').some((m) => [noConnector, badInput, unmet].includes(m.id)),
    ).toBe(false);
    const ok = jobId();
    server.send(lease({ id: ok, input: { output: 'still here' } }));
    expect(await server.next('job-result', (m) => m.id === ok, { from })).toMatchObject({
      output: 'still here',
    });
  });

  it('aborts a cancelled job and reports nothing for it', async () => {
    const id = jobId();
    const from = server.inbox.length;
    server.send(lease({ id, input: { delayMs: 60_000 } }));
    await server.next('job-started', (m) => m.id === id, { from });
    const t0 = Date.now();
    server.send({ type: 'job-cancel', id, attempt: 1, reason: 'cancelled by its submitter' });
    const pull = await server.next('job-pull', (m) => m.free === CONCURRENCY, {
      from: server.inbox.length,
    });
    expect(pull.free).toBe(CONCURRENCY);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const after = server.inbox.slice(from);
    expect(
      after.some((m) => (m.type === 'job-result' || m.type === 'job-failed') && m.id === id),
    ).toBe(false);
  });

  it("enforces the job's timeout itself", async () => {
    const id = jobId();
    const from = server.inbox.length;
    server.send(lease({ id, timeoutS: 1, input: { delayMs: 60_000 } }));
    const failed = await server.next('job-failed', (m) => m.id === id, { from });
    expect(failed).toMatchObject({
      retryable: true,
      error: expect.stringMatching(/timed out after 1 s/),
    });
  });

  it('heartbeats its leases at a third of the lease time', async () => {
    const id = jobId();
    const from = server.inbox.length;
    server.send(lease({ id, leaseMs: 600, input: { delayMs: 1_000, output: 1 } }));
    await server.next('job-result', (m) => m.id === id, { from });
    const beats = server.inbox
      .slice(from)
      .filter((m) => m.type === 'job-heartbeat' && m.leases.some((l) => l.id === id));
    // 1 s of work at 200 ms: 4 or 5 heartbeats
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.length).toBeLessThanOrEqual(6);
  });

  it('fetches an input sent apart and uploads a big output, both with the lease token', async () => {
    const id = jobId();
    const token = `tok-${randomBytes(8).toString('hex')}`;
    const big = 'x'.repeat(100 * 1024);
    server.inputs.set(id, { token, input: { output: { big } } });
    const from = server.inbox.length;
    server.send(lease({ id, input: undefined, leaseToken: token }));
    const result = await server.next('job-result', (m) => m.id === id, { from });
    expect(result.outputUploaded).toBe(true);
    expect(result.output).toBeUndefined();
    const up = server.uploads.find((u) => u.id === id && u.what === 'output');
    expect(up?.token).toBe(token);
    expect(up?.contentType).toBe('application/json');
    expect(JSON.parse(up!.body.toString())).toEqual({ big });
  });

  it('fetches an input from its own server only, whatever inputUrl names', async () => {
    const id = jobId();
    const token = `tok-${randomBytes(8).toString('hex')}`;
    server.inputs.set(id, { token, input: { output: 'fetched at home' } });
    const from = server.inbox.length;
    server.send(
      lease({ id, input: undefined, inputUrl: 'http://127.0.0.2:9/steal', leaseToken: token }),
    );
    expect(await server.next('job-result', (m) => m.id === id, { from })).toMatchObject({
      output: 'fetched at home',
    });
  });

  it('aborts its jobs when the connection drops, and comes back with every slot free', async () => {
    const id = jobId();
    const from = server.inbox.length;
    server.send(lease({ id, input: { delayMs: 60_000 } }));
    await server.next('job-started', (m) => m.id === id, { from });
    expect(jobs.worker.jobs).toEqual([id]);
    const connections = server.connections;
    server.drop();
    const worker = await server.next('worker', () => true, { from: server.inbox.length });
    expect(server.connections).toBe(connections + 1);
    expect(worker.capabilities?.concurrency).toBe(CONCURRENCY);
    const pull = await server.next('job-pull', () => true, { from: server.inbox.indexOf(worker) });
    expect(pull.free).toBe(CONCURRENCY);
    expect(jobs.worker.jobs).toEqual([]);
    expect(
      server.inbox
        .slice(from)
        .some((m) => m.type === 'job-heartbeat' && m.leases.some((l) => l.id === id)),
    ).toBe(false);
  });
});

describe('a node without --jobs', () => {
  it('refuses every lease', async () => {
    const server = new FakeJobServer();
    await server.start();
    const agent = new Agent({
      serverUrl: server.url,
      identity: generateIdentity(),
      name: 'plain',
      services: [],
      log,
    });
    try {
      agent.start();
      // the stand-in welcomes the node as the proof arrives
      await server.next('auth');
      const id = jobId();
      server.send(lease({ id }));
      expect(await server.next('job-failed', (m) => m.id === id)).toMatchObject({
        retryable: true,
        error: expect.stringMatching(/takes no jobs/),
      });
      expect(server.all('worker')).toEqual([]);
      expect(server.all('job-pull')).toEqual([]);
    } finally {
      agent.stop();
      await server.close();
    }
  });
});
