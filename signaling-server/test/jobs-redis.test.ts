/**
 * Jobs with two server instances sharing a real redis-server: a job
 * submitted through instance A reaches a worker waiting on instance B at
 * once (a signal, not B's periodic pull), A's event stream follows what
 * B's worker reports, a cancel through A stops the attempt on B's worker,
 * and A lists B's workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, makeUser, startRedis, withServer } from './helpers';
import { until } from './cluster-fixtures';
import { JobEvents, TestWorker, type Lease } from './jobs-fixtures';
import { WORKER_BEAT_MS } from '../src/jobs/broker';
import type { PeerwayServer } from '../src/server';

let redis: Awaited<ReturnType<typeof startRedis>>;
let a: Awaited<ReturnType<typeof withServer>>;
let b: Awaited<ReturnType<typeof withServer>>;
let A: PeerwayServer;
let B: PeerwayServer;
const workers: TestWorker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  a = await withServer({ redisUrl: redis.url(7), jobLease: '2s' });
  b = await withServer({ redisUrl: redis.url(7), jobLease: '2s' });
  A = a.server;
  B = b.server;
});
afterAll(async () => {
  for (const w of workers) w.close();
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

describe('jobs across two instances', () => {
  it('leases a job submitted on A to the worker waiting on B, and A follows it to the end', async () => {
    const { token } = await makeUser(A);
    const w = new TestWorker(B);
    workers.push(w);
    await w.join(token, { free: 1 });
    await until(
      async () => (await api(A, 'GET', '/api/workers', { token })).json.workers.length === 1,
      'A lists the worker on B',
    );
    // three in a row, each well before B's own periodic pull (every
    // WORKER_BEAT_MS) could have found it: the submit on A woke B's worker
    let l: Lease | undefined;
    let id = '';
    for (let round = 0; round < 3; round++) {
      if (l) {
        w.succeed(l);
        w.pull(1);
      }
      const t0 = Date.now();
      const r = await api(A, 'POST', '/api/jobs', {
        token,
        body: { type: 'simulation', input: { output: 'x' } },
      });
      expect(r.status).toBe(202);
      expect(r.json.warnings).toBeUndefined();
      l = await w.lease();
      expect(Date.now() - t0).toBeLessThan(WORKER_BEAT_MS / 3);
      expect(l.id).toBe(r.json.id);
      id = r.json.id;
    }
    const ev = new JobEvents(A, id, token);
    const all = new JobEvents(A, '*', token); // every job of the user's, as one stream
    await all.until((e) => e.event === 'ready');
    await ev.until((e) => e.data.state === 'leased');
    w.started(l!);
    await ev.until((e) => e.data.state === 'running');
    w.send({ type: 'job-progress', id: l!.id, attempt: 1, value: 2, max: 3 });
    await ev.until((e) => e.event === 'progress' && e.data.value === 2);
    w.succeed(l!, { on: 'B' });
    await ev.done;
    expect(ev.events.at(-1)!.data.state).toBe('succeeded');
    // what happened on B reached A's stream of all jobs, with the job's id
    await all.until((e) => e.data.id === id && e.data.state === 'succeeded');
    expect(all.events.filter((e) => e.data.id === id).map((e) => e.event)).toEqual([
      'state',
      'progress',
      'state',
    ]);
    all.close();
    expect((await api(A, 'GET', `/api/jobs/${id}`, { token })).json).toMatchObject({
      state: 'succeeded',
      output: { on: 'B' },
      node: w.identity.shortId,
    });
  });

  it('ignores garbage on the jobs channel and keeps brokering', async () => {
    const { Redis } = await import('ioredis');
    const r = new Redis(redis.url(7));
    for (const text of [
      'not json',
      '{"from":"x","s":{"t":"event","id":1}}',
      '{"from":"x","s":{"t":"waiting"}}',
    ])
      await r.publish('peerway:7:jobs', text);
    await r.quit();
    const { token } = await makeUser(A);
    const w = new TestWorker(B);
    workers.push(w);
    await w.join(token, { free: 1 });
    const job = await api(A, 'POST', '/api/jobs', { token, body: { type: 'simulation' } });
    expect((await w.lease()).id).toBe(job.json.id);
  });

  it('stops an attempt on B when it is cancelled through A', async () => {
    const { token } = await makeUser(A);
    const w = new TestWorker(B);
    workers.push(w);
    await w.join(token, { free: 1 });
    const r = await api(A, 'POST', '/api/jobs', { token, body: { type: 'simulation' } });
    const l = await w.lease();
    w.started(l);
    await until(
      async () => (await api(A, 'GET', `/api/jobs/${l.id}`, { token })).json.state === 'running',
      'running',
    );
    const c = await api(A, 'POST', `/api/jobs/${r.json.id}/cancel`, { token });
    expect(c.json.state).toBe('cancelled');
    expect((await w.cancelOf(l.id)).reason).toMatch(/cancelled/);
  });

  it("runs a job again on A's worker when the worker on B dies holding it", async () => {
    const { token } = await makeUser(A);
    const onB = new TestWorker(B);
    workers.push(onB);
    await onB.join(token, { free: 1 });
    const r = await api(A, 'POST', '/api/jobs', { token, body: { type: 'simulation' } });
    const l = await onB.lease();
    expect(l.id).toBe(r.json.id);
    const onA = new TestWorker(A);
    workers.push(onA);
    await onA.join(token, { free: 1 });
    onB.close();
    const again = await onA.lease();
    expect(again).toMatchObject({ id: r.json.id, attempt: 2 });
    onA.succeed(again, 'on A');
    const done = await until(async () => {
      const j = (await api(B, 'GET', `/api/jobs/${r.json.id}`, { token })).json;
      return j.state === 'succeeded' ? j : null;
    }, 'succeeded');
    expect(done.attempts.map((a: any) => [a.node, a.outcome])).toEqual([
      [onB.identity.shortId, 'lost'],
      [onA.identity.shortId, 'succeeded'],
    ]);
  });
});
