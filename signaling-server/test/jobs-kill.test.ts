/**
 * `kill -9` of a real server process on a SQLite file loses no accepted
 * job: every submit answered 202 is there after a restart on the same data
 * directory, the attempt that was running when the server died lapses
 * (lost) and runs again, and a worker then finishes every job exactly once.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { randomEmail, randomPassword } from './helpers';
import { until } from './cluster-fixtures';
import { TestWorker } from './jobs-fixtures';
import type { PeerwayServer } from '../src/server';

const BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pw-jobs-kill-'));
const procs: ChildProcess[] = [];
const sockets: TestWorker[] = [];
afterAll(() => {
  for (const w of sockets) w.close();
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startServer(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    process.execPath,
    [BIN, '--port', '0', '--data-dir', dir, '--job-lease', '1s'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEERWAY_LOG_LEVEL: 'warn' },
    },
  );
  procs.push(proc);
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`server did not start: ${out}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) (clearTimeout(t), res(m[1]!));
    });
    proc.once('exit', (code) => rej(new Error(`server exited ${code}: ${out}`)));
  });
  return { proc, url };
}

async function call(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as any };
}

/** A worker against a server process (the fixtures need only its URL). */
const workerAt = (url: string) => {
  const w = new TestWorker({ url } as PeerwayServer);
  sockets.push(w);
  return w;
};

it(
  'loses no accepted job to kill -9, and runs each one to success once',
  { timeout: 180_000 },
  async () => {
    const email = randomEmail();
    await run(process.execPath, [
      BIN,
      'users',
      'create',
      '--email',
      email,
      '--password',
      randomPassword(),
      '--data-dir',
      dir,
    ]);
    const token = (
      await run(process.execPath, [BIN, 'tokens', 'create', '--email', email, '--data-dir', dir])
    ).stdout.trim();

    const first = await startServer();
    const running = workerAt(first.url);
    await running.join(token, { free: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await call(first.url, 'POST', '/api/jobs', token, {
        type: 'simulation',
        priority: i % 3,
        input: { output: i },
      });
      expect(r.status).toBe(202);
      ids.push(r.json.id);
    }
    const l = await running.lease();
    running.started(l);
    await until(
      async () =>
        (await call(first.url, 'GET', `/api/jobs/${l.id}`, token)).json.state === 'running',
      'running',
    );
    // the last accepts, then the kill straight after the last 202
    const more = await Promise.all(
      [10, 11, 12].map((i) =>
        call(first.url, 'POST', '/api/jobs', token, { type: 'simulation', input: { output: i } }),
      ),
    );
    for (const r of more) expect(r.status).toBe(202);
    ids.push(...more.map((r) => r.json.id));
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    running.close();

    const second = await startServer();
    for (const id of ids)
      expect((await call(second.url, 'GET', `/api/jobs/${id}`, token)).status).toBe(200);
    // the attempt that ran when the server died lapses and goes back
    const lost = await until(async () => {
      const j = (await call(second.url, 'GET', `/api/jobs/${l.id}`, token)).json;
      return j.attempts[0]?.outcome === 'lost' ? j : null;
    }, 'the running attempt lapsed');
    expect(lost.attempts[0].error).toMatch(/lease lapsed/);

    const w = workerAt(second.url);
    await w.join(token, { concurrency: 4, free: 4 });
    const seen: string[] = [];
    while (seen.length < ids.length) {
      const x = await w.lease(10_000);
      seen.push(x.id);
      w.succeed(x, { ran: x.id });
      w.pull(1);
    }
    expect([...seen].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const j = await until(async () => {
        const v = (await call(second.url, 'GET', `/api/jobs/${id}`, token)).json;
        return v.state === 'succeeded' ? v : null;
      }, `job ${id} succeeded`);
      expect(j.output).toEqual({ ran: id });
      expect(j.attempts.filter((a: any) => a.outcome === 'succeeded')).toHaveLength(1);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingLeases()).toBe(0);
  },
);
