/**
 * The jobs API against a real server (SQLite) with workers speaking the
 * agent protocol over real WebSockets: priority then FIFO through the API,
 * matching on requirements, isolation between users (and job grants, the
 * public pool), idempotency, the submit-time checks (413, 400 with paths,
 * warnings, strict 422), events over SSE, the agent's HTTP side of a lease
 * (input, output, files) and the metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, makeUser, withServer } from './helpers';
import { report, until } from './cluster-fixtures';
import { JobEvents, TestWorker, connector } from './jobs-fixtures';
import type { PeerwayServer } from '../src/server';
import { MAX_JOB_STREAMS_PER_USER } from '../src/http/routes/jobs';

let s: Awaited<ReturnType<typeof withServer>>;
let S: PeerwayServer;
const workers: TestWorker[] = [];

beforeAll(async () => {
  s = await withServer({ jobLease: '10s' });
  S = s.server;
});
afterAll(async () => {
  for (const w of workers) w.close();
  await s?.stop();
});

const worker = (identity?: ConstructorParameters<typeof TestWorker>[1]) => {
  const w = new TestWorker(S, identity);
  workers.push(w);
  return w;
};

const submit = (token: string, body: unknown, query = '') =>
  api(S, 'POST', `/api/jobs${query}`, { token, body });

describe('submitting', () => {
  it('answers 202 with the job, its defaults, and a warning while no worker may run it; strict refuses it', async () => {
    const { token } = await makeUser(S);
    const r = await submit(token, { type: 'simulation', input: { output: 1 } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({
      type: 'simulation',
      state: 'queued',
      priority: 0,
      maxAttempts: 3,
      attempts: [],
      created: true,
    });
    expect(r.json.warnings[0]).toMatch(/no worker that may run your jobs is online/);
    const strict = await submit(token, { type: 'simulation' }, '?strict=1');
    expect(strict.status).toBe(422);
    expect(strict.json.warnings[0]).toMatch(/no worker/);
    // nothing was queued by the refused one
    const list = await api(S, 'GET', '/api/jobs', { token });
    expect(list.json.jobs.map((j: any) => j.id)).toEqual([r.json.id]);
  });

  it('refuses bad jobs with every problem at its path, an oversized input with 413', async () => {
    const { token } = await makeUser(S);
    const bad = await submit(token, { type: 'shell', priority: 1.5 });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: any) => e.path)).toEqual(
      expect.arrayContaining(['type', 'priority']),
    );
    const badInput = await submit(token, { type: 'simulation', input: { delayMs: -1 } });
    expect(badInput.status).toBe(400);
    expect(badInput.json.errors[0].path).toBe('input.delayMs');
    const big = await submit(token, { type: 'simulation', input: { output: 'x'.repeat(300_000) } });
    expect(big.status).toBe(413);
    expect(big.json.error.message).toMatch(/input is \d+ bytes/);
    const huge = await submit(token, {
      type: 'simulation',
      input: { output: 'x'.repeat(400_000) },
    });
    expect(huge.status).toBe(413);
    const notJson = await api(S, 'POST', '/api/jobs', {
      token,
      headers: { 'content-type': 'text/plain' },
    });
    expect(notJson.status).toBe(400);
    expect((await api(S, 'POST', '/api/jobs', { body: { type: 'simulation' } })).status).toBe(401);
  });

  it('makes one job of two submits with one idempotency key (per submitter)', async () => {
    const a = await makeUser(S);
    const b = await makeUser(S);
    const body = { type: 'simulation', idempotencyKey: 'once' };
    const first = await submit(a.token, body);
    const again = await submit(a.token, body);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: first.json.id, created: false });
    const other = await submit(b.token, body);
    expect(other.json.id).not.toBe(first.json.id);
    expect((await api(S, 'GET', '/api/jobs', { token: a.token })).json.jobs).toHaveLength(1);
  });
});

describe('leasing', () => {
  it('leases the highest priority first, FIFO within one', async () => {
    const { token } = await makeUser(S);
    const ids: Record<string, string> = {};
    for (const [name, priority] of [
      ['a0', 0],
      ['b5', 5],
      ['c0', 0],
      ['d5', 5],
      ['e1', 1],
    ] as const)
      ids[name] = (
        await submit(token, { type: 'simulation', priority, input: { output: name } })
      ).json.id;
    const w = await worker().join(token, { free: 1 });
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const l = await w.lease();
      order.push((l.input as { output: string }).output);
      w.succeed(l, { done: i });
      w.pull(1);
    }
    expect(order).toEqual(['b5', 'd5', 'e1', 'a0', 'c0']);
    const done = await until(async () => {
      const j = (await api(S, 'GET', `/api/jobs/${ids.c0}`, { token })).json;
      return j.state === 'succeeded' ? j : null;
    }, 'the last job succeeded');
    expect(done).toMatchObject({ output: { done: 4 }, node: w.identity.shortId });
    expect(done.attempts).toEqual([
      expect.objectContaining({ attempt: 1, node: w.identity.shortId, outcome: 'succeeded' }),
    ]);
  });

  it("leases no more than the worker's free slots, and never past its concurrency", async () => {
    const { token } = await makeUser(S);
    for (let i = 0; i < 4; i++) await submit(token, { type: 'simulation' });
    const w = await worker().join(token, { concurrency: 2, free: 5 });
    const one = await w.lease();
    await w.lease();
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingLeases()).toBe(0);
    // a pull that crossed the leases in flight still counts the ones held
    w.pull(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingLeases()).toBe(0);
    w.succeed(one);
    w.pull(1);
    await w.lease();
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingLeases()).toBe(0);
    w.close();
  });

  it('leases nothing to a draining node until it stops draining', async () => {
    const { token } = await makeUser(S);
    const w = await worker().join(token);
    w.send({ type: 'drain', draining: true });
    w.pull(1);
    const job = (await submit(token, { type: 'simulation' })).json;
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingLeases()).toBe(0);
    w.send({ type: 'drain', draining: false });
    w.pull(1);
    expect((await w.lease()).id).toBe(job.id);
    w.close();
  });

  it('gives a job only to a worker that meets its requirements, and says why none does', async () => {
    const { token } = await makeUser(S);
    const home = await worker().join(token, {
      resources: report({ labels: { region: 'home' } }),
      connectors: [connector('simulation'), connector('http', { services: ['api'] })],
      free: 1,
    });
    await until(
      async () => (await api(S, 'GET', '/api/workers', { token })).json.workers.length === 1,
      'the worker is listed',
    );
    const away = await submit(token, {
      type: 'simulation',
      requirements: { labels: { region: 'away' } },
    });
    expect(away.status).toBe(202);
    expect(away.json.warnings[0]).toMatch(
      new RegExp(`node ${home.identity.shortId} label region is not "away"`),
    );
    const comfy = await submit(token, { type: 'comfyui', input: { workflow: {} } }, '?strict=1');
    expect(comfy.status).toBe(422);
    expect(comfy.json.warnings[0]).toMatch(/has no comfyui connector/);

    const call = await submit(token, {
      type: 'http',
      requirements: { service: 'api' },
      input: { path: '/x' },
    });
    expect(call.json.warnings).toBeUndefined();
    const l = await home.lease();
    expect(l).toMatchObject({ id: call.json.id, jobType: 'http', attempt: 1 });
    expect(l.requirements.service).toBe('api');

    // the labelled job waits for a node that has the label
    const there = await worker().join(token, {
      resources: report({ labels: { region: 'away' } }),
      free: 1,
    });
    expect((await there.lease()).id).toBe(away.json.id);
    const workersNow = (await api(S, 'GET', '/api/workers', { token })).json.workers;
    expect(workersNow.find((x: any) => x.node === home.identity.shortId)).toMatchObject({
      online: true,
      concurrency: 1,
      running: 1,
      jobs: [call.json.id],
      labels: { region: 'home' },
      pool: 'owner',
    });
  });

  it("keeps users apart: no one else's worker runs a job, sees it or cancels it — until the owner grants it", async () => {
    const alice = await makeUser(S);
    const bob = await makeUser(S);
    const bobs = await worker().join(bob.token, { free: 1 });
    const job = (await submit(alice.token, { type: 'simulation' })).json;
    expect(job.warnings[0]).toMatch(/no worker that may run your jobs/);
    expect((await api(S, 'GET', `/api/jobs/${job.id}`, { token: bob.token })).status).toBe(404);
    expect((await api(S, 'POST', `/api/jobs/${job.id}/cancel`, { token: bob.token })).status).toBe(
      404,
    );
    expect((await api(S, 'POST', `/api/jobs/${job.id}/retry`, { token: bob.token })).status).toBe(
      404,
    );
    const ev = new JobEvents(S, job.id, bob.token);
    await ev.done;
    expect(ev.status).toBe(404);
    expect((await api(S, 'GET', '/api/workers', { token: alice.token })).json.workers).toEqual([]);

    // only the node's owner grants; alice may not grant herself bob's node
    const nodePath = `/api/nodes/${bobs.identity.shortId}/job-grants`;
    expect(
      (await api(S, 'POST', nodePath, { token: alice.token, body: { public: true } })).status,
    ).toBe(404);
    await new Promise((r) => setTimeout(r, 300));
    expect(bobs.pendingLeases()).toBe(0);

    const email = alice.user.email;
    const g = await api(S, 'POST', nodePath, { token: bob.token, body: { email } });
    expect(g.status).toBe(201);
    expect(g.json).toMatchObject({ public: false, users: [email] });
    const l = await bobs.lease();
    expect(l.id).toBe(job.id);
    bobs.succeed(l, 'ok');
    expect(
      (await api(S, 'GET', '/api/workers', { token: alice.token })).json.workers[0],
    ).toMatchObject({ node: bobs.identity.shortId, pool: 'shared' });

    // taken back: alice's next job waits; the public pool lets anyone's run
    await api(S, 'DELETE', nodePath, { token: bob.token, body: { email } });
    const carol = await makeUser(S);
    const next = (await submit(alice.token, { type: 'simulation' })).json;
    bobs.pull(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(bobs.pendingLeases()).toBe(0);
    expect(
      (await api(S, 'POST', nodePath, { token: bob.token, body: { public: true } })).json,
    ).toMatchObject({ public: true, users: [] });
    const carolsJob = (await submit(carol.token, { type: 'simulation' })).json;
    expect(carolsJob.warnings).toBeUndefined();
    // the public pool runs everyone's jobs (earlier tests' users' too), oldest first
    const ran: string[] = [];
    while (!ran.includes(carolsJob.id) && ran.length < 50) {
      const l2 = await bobs.lease();
      ran.push(l2.id);
      bobs.succeed(l2);
      bobs.pull(1);
    }
    expect(ran).toContain(next.id);
    expect(ran.indexOf(next.id)).toBeLessThan(ran.indexOf(carolsJob.id));
    // a public worker takes anyone's job: gone before the next tests
    bobs.close();
    await until(
      async () =>
        (await api(S, 'GET', '/api/workers', { token: bob.token })).json.workers.length === 0,
      'the public worker is gone',
    );
  });
});

describe('listing', () => {
  it('lists newest first in pages, filtered by state and type', async () => {
    const { token } = await makeUser(S);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await submit(token, { type: 'comfyui', input: { workflow: {} } })).json.id);
    await submit(token, { type: 'simulation' });
    const first = await api(S, 'GET', '/api/jobs?type=comfyui&limit=2', { token });
    expect(first.json.jobs.map((j: any) => j.id)).toEqual([ids[2], ids[1]]);
    expect(first.json.next).toEqual(expect.any(Number));
    const rest = await api(S, 'GET', `/api/jobs?type=comfyui&limit=2&before=${first.json.next}`, {
      token,
    });
    expect(rest.json.jobs.map((j: any) => j.id)).toEqual([ids[0]]);
    expect(rest.json.next).toBeUndefined();
    await api(S, 'POST', `/api/jobs/${ids[1]}/cancel`, { token });
    const cancelled = await api(S, 'GET', '/api/jobs?state=cancelled', { token });
    expect(cancelled.json.jobs.map((j: any) => j.id)).toEqual([ids[1]]);
  });
});

describe('admins', () => {
  it("see and cancel anyone's job, and list everyone's with ?all=1 (others only their own)", async () => {
    const alice = await makeUser(S);
    const admin = await makeUser(S, true);
    const job = (await submit(alice.token, { type: 'comfyui', input: { workflow: {} } })).json;
    expect((await api(S, 'GET', `/api/jobs/${job.id}`, { token: admin.token })).status).toBe(200);
    const all = await api(S, 'GET', '/api/jobs?all=1&type=comfyui&state=queued', {
      token: admin.token,
    });
    expect(all.json.jobs.map((j: any) => j.id)).toContain(job.id);
    const mine = await api(S, 'GET', '/api/jobs?all=1', { token: alice.token });
    expect(mine.json.jobs.map((j: any) => j.id)).toEqual([job.id]);
    expect((await api(S, 'GET', '/api/jobs?state=nope', { token: alice.token })).status).toBe(400);
    const c = await api(S, 'POST', `/api/jobs/${job.id}/cancel`, { token: admin.token });
    expect(c.json.state).toBe('cancelled');
  });
});

describe('events and the agent side of a lease', () => {
  it('streams state and progress events from the current state until the job is final', async () => {
    const { token } = await makeUser(S);
    const job = (await submit(token, { type: 'simulation' })).json;
    const ev = new JobEvents(S, job.id, token);
    await ev.until((e) => e.event === 'state' && e.data.state === 'queued');
    const w = await worker().join(token, { free: 1 });
    const l = await w.lease();
    await ev.until((e) => e.data.state === 'leased');
    w.started(l);
    await ev.until((e) => e.data.state === 'running');
    w.send({
      type: 'job-progress',
      id: l.id,
      attempt: l.attempt,
      value: 1,
      max: 4,
      message: 'one',
    });
    await ev.until((e) => e.event === 'progress' && e.data.value === 1);
    w.succeed(l, { fine: true });
    await ev.done;
    expect(ev.events.map((e) => (e.event === 'state' ? e.data.state : 'progress'))).toEqual([
      'queued',
      'leased',
      'running',
      'progress',
      'succeeded',
    ]);
    expect(ev.events[1]!.data).toMatchObject({ attempt: 1, node: w.identity.shortId });
    const shown = (await api(S, 'GET', `/api/jobs/${job.id}`, { token })).json;
    expect(shown.progress).toMatchObject({ value: 1, max: 4, message: 'one' });
    // a final job's stream says its state and ends
    const late = new JobEvents(S, job.id, token);
    await late.done;
    expect(late.events).toEqual([
      { event: 'state', data: expect.objectContaining({ state: 'succeeded' }) },
    ]);
  });

  it("streams every event of all the caller's jobs, each with its job's id, and nobody else's", async () => {
    const a = await makeUser(S);
    const b = await makeUser(S);
    const mine = new JobEvents(S, '*', a.token);
    const theirs = new JobEvents(S, '*', b.token);
    await mine.until((e) => e.event === 'ready');
    await theirs.until((e) => e.event === 'ready');
    const j1 = (await submit(a.token, { type: 'simulation' })).json;
    const j2 = (await submit(a.token, { type: 'simulation', priority: 5 })).json;
    const other = (await submit(b.token, { type: 'simulation' })).json;
    const w = await worker().join(a.token, { free: 1 });
    const first = await w.lease();
    expect(first.id).toBe(j2.id); // the higher priority
    w.started(first);
    w.succeed(first, { n: 2 });
    w.pull(1);
    const second = await w.lease();
    w.fail(second, 'broke', false);
    await mine.until((e) => e.data.id === j1.id && e.data.state === 'dead');
    const seen = (id: string) =>
      mine.events.filter((e) => e.data.id === id).map((e) => `${e.event}:${e.data.state}`);
    expect(seen(j2.id)).toEqual([
      'state:queued',
      'state:leased',
      'state:running',
      'state:succeeded',
    ]);
    expect(seen(j1.id)).toEqual(['state:queued', 'state:leased', 'state:dead']);
    expect(mine.events.some((e) => e.data.id === other.id)).toBe(false);
    expect(theirs.events.filter((e) => e.event !== 'ready').map((e) => e.data.id)).toEqual([
      other.id,
    ]);
    mine.close();
    theirs.close();
  });

  it('lets one user hold at most MAX_JOB_STREAMS_PER_USER event streams at once, of either kind', async () => {
    const { token } = await makeUser(S);
    const job = (await submit(token, { type: 'simulation' })).json;
    const open = Array.from({ length: MAX_JOB_STREAMS_PER_USER }, (_, i) =>
      i % 2 ? new JobEvents(S, '*', token) : new JobEvents(S, job.id, token),
    );
    await Promise.all(open.map((e) => e.until((x) => x.event === 'ready' || x.event === 'state')));
    const over = [new JobEvents(S, '*', token), new JobEvents(S, job.id, token)];
    await Promise.all(over.map((e) => e.done));
    expect(over.map((e) => e.status)).toEqual([429, 429]);
    // someone else is not counted against this user
    const other = new JobEvents(S, '*', (await makeUser(S)).token);
    await other.until((x) => x.event === 'ready');
    open[0]!.close();
    await open[0]!.done;
    await until(async () => {
      const again = new JobEvents(S, '*', token);
      const ok = await again
        .until((x) => x.event === 'ready', 300)
        .then(
          () => true,
          () => false,
        );
      again.close();
      return ok;
    }, 'a stream is allowed again once one closed');
    for (const e of [...open, other]) e.close();
  });

  it('fetches a large input, takes an uploaded output and files with the lease token only', async () => {
    const { token } = await makeUser(S);
    const other = await makeUser(S);
    const input = { output: 'y'.repeat(40_000) };
    const job = (await submit(token, { type: 'simulation', input })).json;
    const w = await worker().join(token, { free: 1 });
    const l = await w.lease();
    expect(l.input).toBeUndefined();
    expect(l.inputUrl).toBe(`${S.config.publicUrl}/api/agent/jobs/${job.id}/input`);
    const agentCall = (
      method: string,
      path: string,
      bearer: string,
      body?: BodyInit,
      type?: string,
    ) =>
      fetch(`${S.url}/api/agent/jobs/${job.id}${path}`, {
        method,
        headers: { authorization: `Bearer ${bearer}`, ...(type ? { 'content-type': type } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
    const fetched = (await (await agentCall('GET', '/input', l.leaseToken)).json()) as any;
    expect(fetched.output === input.output).toBe(true);
    expect((await agentCall('GET', '/input', token)).status).toBe(401);
    expect((await agentCall('GET', '/input', `${l.leaseToken}x`)).status).toBe(401);

    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const put = await agentCall('PUT', '/files/out.png', l.leaseToken, png, 'image/png');
    expect(put.status).toBe(201);
    expect((await agentCall('PUT', '/files/..%2Fx', l.leaseToken, png, 'image/png')).status).toBe(
      400,
    );
    const big = { rows: Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'z'.repeat(20) })) };
    const out = await agentCall(
      'PUT',
      '/output',
      l.leaseToken,
      JSON.stringify(big),
      'application/json',
    );
    expect(out.status).toBe(200);
    w.send({ type: 'job-result', id: l.id, attempt: l.attempt, outputUploaded: true });
    const done = await until(async () => {
      const j = (await api(S, 'GET', `/api/jobs/${job.id}`, { token })).json;
      return j.state === 'succeeded' ? j : null;
    }, 'succeeded');
    expect(done.output).toEqual(big);
    expect(done.files).toEqual([
      {
        name: 'out.png',
        bytes: png.length,
        contentType: 'image/png',
        url: `/api/jobs/${job.id}/files/out.png`,
      },
    ]);
    const file = await fetch(`${S.url}${done.files[0].url}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    expect(file.headers.get('content-security-policy')).toMatch(/sandbox/);
    expect(Buffer.from(await file.arrayBuffer())).toEqual(png);
    const theirs = await fetch(`${S.url}${done.files[0].url}`, {
      headers: { authorization: `Bearer ${other.token}` },
    });
    expect(theirs.status).toBe(404);
    // the attempt is over: its token uploads nothing more
    expect(
      (await agentCall('PUT', '/files/late.txt', l.leaseToken, 'x', 'text/plain')).status,
    ).toBe(401);
  });

  it('counts jobs on /metrics', async () => {
    const { token } = await makeUser(S);
    // one that no worker takes: it stays in the queue at priority 7
    await submit(token, { type: 'comfyui', priority: 7, input: { workflow: {} } });
    const text = await (await fetch(`${S.url}/metrics`)).text();
    expect(text).toMatch(/peerway_jobs_submitted_total\{type="simulation"\} [1-9]/);
    expect(text).toMatch(/peerway_jobs_completed_total\{type="simulation"\} [1-9]/);
    expect(text).toMatch(/peerway_jobs_queue_depth\{priority="7",waiting="queued"\} 1/);
    expect(text).toMatch(/peerway_job_wait_seconds_count [1-9]/);
    expect(text).toMatch(/peerway_job_run_seconds_count\{outcome="succeeded"\} [1-9]/);
    expect(text).toMatch(/# TYPE peerway_jobs_dead_total counter/);
  });
});
