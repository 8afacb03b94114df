/**
 * What the broker does when things go wrong, against a real server
 * (SQLite, a 1 s lease) and workers over real WebSockets: a worker's
 * socket dies (its lease lapses, the attempt is `lost`, the job goes back
 * at its place), heartbeats keep a lease, failures retry with backoff and
 * then go to the dead letter, the server's own timeout, cancel of a
 * waiting and of a running job, and a worker's garbage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, makeUser, withServer } from './helpers';
import { until } from './cluster-fixtures';
import { TestWorker } from './jobs-fixtures';
import type { PeerwayServer } from '../src/server';

let s: Awaited<ReturnType<typeof withServer>>;
let S: PeerwayServer;
const workers: TestWorker[] = [];
const LEASE_MS = 1000;

beforeAll(async () => {
  s = await withServer({ jobLease: `${LEASE_MS}ms` });
  S = s.server;
});
afterAll(async () => {
  for (const w of workers) w.close();
  await s?.stop();
});

const worker = () => {
  const w = new TestWorker(S);
  workers.push(w);
  return w;
};
const submit = async (token: string, body: Record<string, unknown>) => {
  const r = await api(S, 'POST', '/api/jobs', { token, body: { type: 'simulation', ...body } });
  expect(r.status).toBe(202);
  return r.json as { id: string };
};
const job = async (token: string, id: string) =>
  (await api(S, 'GET', `/api/jobs/${id}`, { token })).json;
const jobWhere = (token: string, id: string, ok: (j: any) => boolean, what: string, ms = 10_000) =>
  until(
    async () => {
      const j = await job(token, id);
      return ok(j) ? j : null;
    },
    what,
    ms,
  );

describe('faults', () => {
  it("puts a job whose worker's socket closed back at its place at once", async () => {
    const { token } = await makeUser(S);
    const first = await submit(token, { input: { output: 'first' } });
    const second = await submit(token, { input: { output: 'second' } });
    const dying = await worker().join(token, { free: 1 });
    const l = await dying.lease();
    expect(l).toMatchObject({ id: first.id, attempt: 1, leaseMs: LEASE_MS });
    dying.started(l);
    await jobWhere(token, first.id, (j) => j.state === 'running', 'running');
    const closedAt = Date.now();
    dying.close();
    const back = await jobWhere(token, first.id, (j) => j.state !== 'running', 'back');
    // at the close, not when the lease would have lapsed
    expect(back.attempts[0].endedAt - closedAt).toBeLessThan(LEASE_MS / 2);
    expect(back.attempts[0]).toMatchObject({ attempt: 1, outcome: 'lost' });
    expect(back.attempts[0].error).toMatch(/connection closed/);
    // a new worker gets the first job again before the one submitted after it
    const next = await worker().join(token, { free: 1 });
    const again = await next.lease();
    expect(again).toMatchObject({ id: first.id, attempt: 2 });
    expect(again.leaseToken).not.toBe(l.leaseToken);
    next.succeed(again, 'done');
    next.pull(1);
    expect((await next.lease()).id).toBe(second.id);
    const done = await jobWhere(token, first.id, (j) => j.state === 'succeeded', 'succeeded');
    expect(done.attempts.map((a: any) => a.outcome)).toEqual(['lost', 'succeeded']);
  });

  it('keeps a lease while heartbeats come, and refuses a report once it is gone', async () => {
    const { token } = await makeUser(S);
    const { id } = await submit(token, {});
    const w = await worker().join(token, { free: 1 });
    const l = await w.lease();
    w.started(l);
    const beats = setInterval(() => w.heartbeat(l), LEASE_MS / 4);
    await new Promise((r) => setTimeout(r, LEASE_MS * 2.5));
    clearInterval(beats);
    expect((await job(token, id)).state).toBe('running');
    // silent now (the socket stays open): lost, and the worker is told to stop
    const cancel = await w.cancelOf(id, LEASE_MS * 5);
    expect(cancel).toMatchObject({ attempt: 1, reason: expect.stringMatching(/lapsed/) });
    const lost = await jobWhere(token, id, (j) => j.attempts[0]?.outcome === 'lost', 'lost');
    expect(['queued', 'failed', 'leased']).toContain(lost.state);
    // its late result changes nothing
    w.succeed(l, 'too late');
    w.heartbeat(l);
    await new Promise((r) => setTimeout(r, 200));
    const after = await job(token, id);
    expect(after.output).toBeUndefined();
    expect(after.attempts[0].outcome).toBe('lost');
  });

  it('retries a failure after its backoff, then keeps every error in the dead letter', async () => {
    const { token } = await makeUser(S);
    const { id } = await submit(token, {
      maxAttempts: 3,
      backoff: { type: 'fixed', delayMs: 300, maxDelayMs: 300 },
    });
    const w = await worker().join(token, { concurrency: 1, free: 1 });
    const failedAt: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const l = await w.lease();
      expect(l).toMatchObject({ id, attempt: n });
      if (failedAt.length) {
        // after its backoff, and soon after it (the retry's own wake, not the 5 s pull)
        const waited = Date.now() - failedAt.at(-1)!;
        expect(waited).toBeGreaterThanOrEqual(250);
        expect(waited).toBeLessThan(1500);
      }
      w.fail(l, `boom ${n}`);
      failedAt.push(Date.now());
      if (n < 3) {
        const j = await jobWhere(
          token,
          id,
          (x) => x.attempts.length === n && x.attempts[n - 1].outcome,
          'failed',
        );
        expect(j.state).toBe('failed');
        expect(j.retryAt).toBeGreaterThan(Date.now() - 100);
      }
      w.pull(1);
    }
    const dead = await jobWhere(token, id, (j) => j.state === 'dead', 'dead');
    expect(dead.attempts.map((a: any) => [a.outcome, a.error])).toEqual([
      ['failed', 'boom 1'],
      ['failed', 'boom 2'],
      ['failed', 'boom 3'],
    ]);
    expect(dead.error).toBe('boom 3');
    await new Promise((r) => setTimeout(r, 400));
    expect(w.pendingLeases()).toBe(0);

    // not retryable: dead at once; retry brings it back with fresh attempts
    const other = await submit(token, { maxAttempts: 5 });
    const l = await w.lease();
    expect(l.id).toBe(other.id);
    w.fail(l, 'bad input', false);
    await jobWhere(token, other.id, (j) => j.state === 'dead', 'dead at once');
    const r = await api(S, 'POST', `/api/jobs/${other.id}/retry`, { token });
    expect(r.json.state).toBe('queued');
    w.pull(1);
    const again = await w.lease();
    expect(again.id).toBe(other.id);
    w.succeed(again);
    const done = await jobWhere(token, other.id, (j) => j.state === 'succeeded', 'succeeded');
    expect(done.attempts.map((a: any) => a.outcome)).toEqual(['failed', 'succeeded']);
    const text = await (await fetch(`${S.url}/metrics`)).text();
    expect(text).toMatch(/peerway_jobs_dead_total\{type="simulation"\} [2-9]/);
  });

  it("ends an attempt past its timeout on the server's own clock and tells the worker", async () => {
    const { token } = await makeUser(S);
    const { id } = await submit(token, { timeoutS: 1, maxAttempts: 1 });
    const w = await worker().join(token, { free: 1 });
    const l = await w.lease();
    w.started(l);
    const beats = setInterval(() => w.heartbeat(l), LEASE_MS / 4);
    try {
      const c = await w.cancelOf(id, 5000);
      expect(c.reason).toMatch(/timed out/);
    } finally {
      clearInterval(beats);
    }
    const dead = await jobWhere(token, id, (j) => j.state === 'dead', 'dead');
    expect(dead.attempts[0]).toMatchObject({ outcome: 'timeout' });
  });

  it('cancels a waiting job at once and a running one on its worker', async () => {
    const { token } = await makeUser(S);
    const waiting = await submit(token, {});
    const c1 = await api(S, 'POST', `/api/jobs/${waiting.id}/cancel`, { token });
    expect(c1.json.state).toBe('cancelled');
    const running = await submit(token, {});
    const w = await worker().join(token, { free: 1 });
    const l = await w.lease();
    expect(l.id).toBe(running.id);
    w.started(l);
    await jobWhere(token, running.id, (j) => j.state === 'running', 'running');
    const c2 = await api(S, 'POST', `/api/jobs/${running.id}/cancel`, { token });
    expect(c2.json.state).toBe('cancelled');
    expect(c2.json.attempts[0].outcome).toBe('cancelled');
    expect((await w.cancelOf(running.id)).reason).toMatch(/cancelled/);
    w.succeed(l, 'finished anyway');
    await new Promise((r) => setTimeout(r, 200));
    expect((await job(token, running.id)).state).toBe('cancelled');
  });

  it("fails only the attempt a worker's garbage belongs to, and ignores reports for jobs it does not hold", async () => {
    const alice = await makeUser(S);
    const bob = await makeUser(S);
    const theirs = await submit(bob.token, {});
    const bobs = await worker().join(bob.token, { free: 1 });
    const bl = await bobs.lease();
    const w = await worker().join(alice.token, { free: 1 });
    // reports about bob's job from alice's worker change nothing
    w.succeed(bl, 'stolen');
    w.fail(bl, 'sabotage', false);
    w.send({ type: 'job-progress', id: bl.id, attempt: bl.attempt, value: 99 });
    w.started(bl);
    await new Promise((r) => setTimeout(r, 200));
    expect(await job(bob.token, theirs.id)).toMatchObject({ state: 'leased' });
    expect((await job(bob.token, theirs.id)).progress).toBeUndefined();

    // an uploaded output that never arrived: that attempt fails, the worker carries on
    const mine = await submit(alice.token, { maxAttempts: 2, backoff: { delayMs: 0 } });
    const l = await w.lease();
    w.send({ type: 'job-result', id: l.id, attempt: l.attempt, outputUploaded: true });
    const j = await jobWhere(
      alice.token,
      mine.id,
      (x) => x.attempts[0]?.outcome === 'failed',
      'failed',
    );
    expect(j.attempts[0].error).toMatch(/no upload arrived/);
    // malformed messages get an error, the connection stays
    w.sendRaw(JSON.stringify({ type: 'job-result', id: 'x', attempt: -1 }));
    expect((await w.nextOf('error')).code).toBe('bad_message');
    w.pull(1);
    const l2 = await w.lease();
    expect(l2).toMatchObject({ id: mine.id, attempt: 2 });
    w.succeed(l2, 'fine');
    await jobWhere(alice.token, mine.id, (x) => x.state === 'succeeded', 'succeeded');
    bobs.succeed(bl, 'real');
    await jobWhere(bob.token, theirs.id, (x) => x.output === 'real', 'bob got his own result');
  });
});
