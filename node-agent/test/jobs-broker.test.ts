/**
 * The real agent bin as a worker against the real server's broker (SQLite,
 * in-process, on port 0): jobs submitted through POST /api/jobs run on the
 * node (simulation, http to a declared service, comfyui against the
 * stand-in, since ComfyUI itself cannot run here), their results and files
 * come back through the API, a big output is uploaded with the lease token,
 * a cancel reaches the running job and frees its slot, a failing job goes
 * to the dead letter with its error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { parseConfig, startPeerwayServer, type PeerwayServer } from '@peerway/signaling-server';
import { ComfyUiStandIn, txt2imgWorkflow } from '../../e2e/fixtures/comfyui-standin';
import { Fixture, type AgentProcess } from './helpers';

const f = new Fixture();
let server: PeerwayServer;
let base = '';
let token = '';
let agent: AgentProcess;
const comfy = new ComfyUiStandIn();
let upstream: http.Server;

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, res };
}

/** Polls the job until it is in one of `states`. */
async function until(id: string, states: string[], timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call('GET', `/api/jobs/${id}`);
    if (states.includes(r.json.state)) return r.json;
    if (Date.now() > deadline)
      throw new Error(`job ${id} is ${r.json.state}: ${JSON.stringify(r.json)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  server = await startPeerwayServer(
    parseConfig({
      port: 0,
      dataDir: f.tmp('pw-jobs-server-'),
      presenceTimeoutMs: 30_000,
      heartbeatIntervalMs: 1_000,
      jobLease: '3s',
    }),
  );
  f.onCleanup(() => server.close());
  base = server.url;
  ({ token } = await f.user(server));
  await comfy.start();
  f.onCleanup(() => comfy.close());
  upstream = http.createServer((req, res) =>
    res
      .writeHead(201, { 'content-type': 'application/json' })
      .end(JSON.stringify({ path: req.url })),
  );
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  f.onCleanup(() => new Promise<void>((r) => upstream.close(() => r())));
  agent = await f.agent({
    serverUrl: base,
    token,
    services: [`backend=127.0.0.1:${(upstream.address() as { port: number }).port}`],
    extraArgs: [
      '--jobs',
      '--job-concurrency',
      '2',
      '--connector',
      'simulation',
      '--connector',
      'http=backend',
      '--connector',
      `comfyui=${comfy.url}`,
    ],
  });
  // the worker is registered once the server lists it
  const deadline = Date.now() + 20_000;
  for (;;) {
    const w = await call('GET', '/api/workers');
    if (w.status === 200 && (w.json.workers ?? w.json).length > 0) break;
    if (Date.now() > deadline) throw new Error(`no worker: ${JSON.stringify(w.json)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(() => f.cleanup());

describe('the agent as a worker of the real broker', () => {
  it('is listed with its connectors, and runs a simulation job', async () => {
    const w = await call('GET', '/api/workers');
    const list = w.json.workers ?? w.json;
    expect(list[0]).toMatchObject({ online: true, concurrency: 2 });
    const types = list[0].connectors.map((c: { type: string }) => c.type).sort();
    expect(types).toEqual(['comfyui', 'http', 'simulation']);
    const sub = await call('POST', '/api/jobs', {
      type: 'simulation',
      input: { delayMs: 100, progressSteps: 2, output: { answer: 42 } },
    });
    expect(sub.status).toBe(202);
    const done = await until(sub.json.id, ['succeeded', 'dead']);
    expect(done).toMatchObject({ state: 'succeeded', output: { answer: 42 } });
    expect(done.attempts[0].node).toMatch(/^[0-9a-f]{6}$/);
  });

  it('uploads an output too big for its message with the lease token', async () => {
    const big = 'z'.repeat(100 * 1024);
    const sub = await call('POST', '/api/jobs', { type: 'simulation', input: { output: { big } } });
    const done = await until(sub.json.id, ['succeeded', 'dead']);
    expect(done.error ?? null).toBeNull();
    expect(done.state).toBe('succeeded');
    expect(done.output).toEqual({ big });
  });

  it('calls a declared service by path', async () => {
    const sub = await call('POST', '/api/jobs', {
      type: 'http',
      requirements: { service: 'backend' },
      input: { method: 'GET', path: '/hello?x=1' },
    });
    const done = await until(sub.json.id, ['succeeded', 'dead']);
    expect(done.output).toMatchObject({ status: 201, body: { path: '/hello?x=1' } });
  });

  it('runs a ComfyUI workflow and serves its images from the job', async () => {
    const sub = await call('POST', '/api/jobs', {
      type: 'comfyui',
      requirements: { models: ['sd_xl_base_1.0.safetensors'] },
      input: { workflow: txt2imgWorkflow({ steps: 3, batch: 2 }) },
    });
    expect(sub.status).toBe(202);
    const done = await until(sub.json.id, ['succeeded', 'dead']);
    expect(done.state).toBe('succeeded');
    expect(done.files).toHaveLength(2);
    for (const file of done.files) {
      expect(file.contentType).toBe('image/png');
      const r = await fetch(`${base}${file.url}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(r.status).toBe(200);
      const bytes = Buffer.from(await r.arrayBuffer());
      expect(bytes.subarray(1, 4).toString()).toBe('PNG');
      expect(bytes.length).toBe(file.bytes);
    }
    expect(done.output.images.map((i: { file: string }) => i.file).sort()).toEqual(
      done.files.map((x: { name: string }) => x.name).sort(),
    );
  });

  it('stops a running job its submitter cancels, and takes the next one', async () => {
    const sub = await call('POST', '/api/jobs', { type: 'simulation', input: { delayMs: 60_000 } });
    await until(sub.json.id, ['running']);
    const c = await call('POST', `/api/jobs/${sub.json.id}/cancel`);
    expect(c.status).toBeLessThan(300);
    expect((await until(sub.json.id, ['cancelled'])).state).toBe('cancelled');
    // both slots free again: two jobs run at once
    const a = await call('POST', '/api/jobs', {
      type: 'simulation',
      input: { delayMs: 500, output: 'a' },
    });
    const b = await call('POST', '/api/jobs', {
      type: 'simulation',
      input: { delayMs: 500, output: 'b' },
    });
    const t0 = Date.now();
    await until(a.json.id, ['succeeded']);
    await until(b.json.id, ['succeeded']);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('sends a job that fails every attempt to the dead letter with its error', async () => {
    const sub = await call('POST', '/api/jobs', {
      type: 'simulation',
      input: { fail: true },
      maxAttempts: 2,
      backoff: { delayMs: 10, maxDelayMs: 10 },
    });
    const done = await until(sub.json.id, ['dead']);
    expect(done.attempts).toHaveLength(2);
    expect(done.error).toMatch(/simulated failure/);
    expect(agent.proc.exitCode).toBeNull();
  });

  it('re-runs a job elsewhere when its worker is killed with -9 mid-job', async () => {
    const second = await f.agent({
      serverUrl: base,
      token,
      services: [],
      waitFor: /Connected to/,
      extraArgs: ['--jobs', '--connector', 'simulation'],
    });
    const idOf = (a: AgentProcess) => /Node ([0-9a-f]{6}) /.exec(a.stdout)![1]!;
    const byNode = new Map([
      [idOf(agent), agent],
      [idOf(second), second],
    ]);
    await expect
      .poll(async () => ((await call('GET', '/api/workers')).json.workers ?? []).length, {
        timeout: 20_000,
      })
      .toBe(2);
    const sub = await call('POST', '/api/jobs', {
      type: 'simulation',
      input: { delayMs: 3_000, output: 'survived' },
    });
    const running = await until(sub.json.id, ['running']);
    const first = running.attempts[0].node as string;
    const victim = byNode.get(first)!;
    victim.proc.kill('SIGKILL');
    const done = await until(sub.json.id, ['succeeded', 'dead'], 40_000);
    expect(done.state).toBe('succeeded');
    expect(done.output).toBe('survived');
    expect(done.attempts).toHaveLength(2);
    expect(done.attempts[0]).toMatchObject({ node: first, outcome: 'lost' });
    expect(done.attempts[1].node).not.toBe(first);
  });
});
