/**
 * `peerway jobs` as a user runs it (the bin, a child process) against a
 * real server (SQLite) with a worker that speaks the jobs part of the agent
 * protocol over the real agent WebSocket, driven step by step (it leases,
 * starts, reports progress, uploads a file, succeeds or fails when the test
 * says): submit --wait printing each state and progress line as the
 * server's event stream brings it, the exit codes (0 succeeded, 1 dead or
 * refused, 2 --wait-timeout), warnings on stderr, --strict, the server's
 * errors with their paths and flags, list, show with files and --download,
 * cancel, retry, show --follow, --json, and another user's job unseen.
 * Last, the real agent (`peerway-agent run --jobs --connector simulation`)
 * as the worker: submit --wait from the CLI to its result.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, makeUser, withServer } from '../../signaling-server/test/helpers';
import { until } from '../../signaling-server/test/cluster-fixtures';
import { TestWorker, type Lease } from '../../signaling-server/test/jobs-fixtures';

const BIN = resolve(import.meta.dirname, '../bin/peerway.js');
const AGENT_BIN = resolve(import.meta.dirname, '../../node-agent/bin/peerway-agent.js');
const home = mkdtempSync(join(tmpdir(), 'pw-cli-jobs-'));
let srv: Awaited<ReturnType<typeof withServer>>;
let token = '';
let worker: TestWorker;
let beat: ReturnType<typeof setInterval>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `peerway` as the test's user; `onOut` sees stdout as it comes (to
 * act on a line it printed).
 */
function peerway(
  args: string[],
  onOut: (soFar: string) => void = () => {},
  as = token,
): Promise<Run> {
  return new Promise((res) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: {
          ...process.env,
          PEERWAY_HOME: home,
          PEERWAY_SERVER: srv.server.url,
          PEERWAY_TOKEN: as,
        },
      },
      (err, stdout, stderr) =>
        res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => onOut((out += d.toString())));
  });
}

/** Resolves once `re` shows in what `peerway` printed so far (fed by onOut). */
function printed() {
  let text = '';
  const waiters: { re: RegExp; go: () => void }[] = [];
  return {
    feed(soFar: string) {
      text = soFar;
      for (const w of waiters.splice(0))
        if (w.re.test(text)) w.go();
        else waiters.push(w);
    },
    when(re: RegExp): Promise<void> {
      if (re.test(text)) return Promise.resolve();
      return new Promise((go) => waiters.push({ re, go }));
    },
  };
}

const idOf = (stdout: string) => /Submitted (\S+) /.exec(stdout)![1]!;

beforeAll(async () => {
  srv = await withServer({ jobLease: '10s' });
  ({ token } = await makeUser(srv.server));
  worker = await new TestWorker(srv.server).join(token);
  // a test worker says nothing by itself: heartbeats keep it online while the CLI runs
  beat = setInterval(() => worker.send({ type: 'heartbeat' }), 1000);
});
afterAll(async () => {
  clearInterval(beat);
  worker?.close();
  await srv?.stop();
  rmSync(home, { recursive: true, force: true });
});

it('submit --wait prints each state and progress as it happens, and exits 0 when it succeeds', async () => {
  const out = printed();
  let lease: Lease | null = null;
  const run = peerway(
    [
      'jobs',
      'submit',
      '--type',
      'simulation',
      '--input',
      '{"output":{"frames":2}}',
      '--priority',
      '5',
      '--wait',
    ],
    out.feed,
  );
  // each step waits for the CLI's line about the one before: the lines come from the stream
  await out.when(/queued/);
  worker.pull(1);
  lease = await worker.lease();
  worker.started(lease);
  await out.when(/running {2}attempt 1 on [0-9a-f]{6}/);
  worker.send({
    type: 'job-progress',
    id: lease.id,
    attempt: lease.attempt,
    value: 1,
    max: 2,
    message: 'frame 1',
  });
  await out.when(/progress {2}1\/2 frame 1 \(attempt 1\)/);
  const res = await fetch(`${srv.server.url}/api/agent/jobs/${lease.id}/files/frame.txt`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${lease.leaseToken}`, 'content-type': 'text/plain' },
    body: 'frame one',
  });
  expect(res.status).toBe(201);
  worker.succeed(lease, { frames: 2 });
  const r = await run;
  expect(r.code).toBe(0);
  expect(r.stderr).toBe('');
  const lines = r.stdout.trim().split('\n');
  expect(lines[0]).toBe(`Submitted ${lease.id} (simulation, priority 5)`);
  const followed = lines.slice(1).map((l) => l.replace(/^\d\d:\d\d:\d\d {2}/, ''));
  // "queued" is printed from the submit's answer, before the event stream
  // is open: a lease and start that come before it opens reach the CLI as
  // the stream's first state (running), so "leased" may not be printed
  if (followed[1]?.startsWith('leased')) {
    expect(followed[1]).toMatch(/^leased {2}attempt 1 on [0-9a-f]{6}$/);
    followed.splice(1, 1);
  }
  expect(followed).toEqual([
    'queued',
    expect.stringMatching(/^running {2}attempt 1 on [0-9a-f]{6}$/),
    'progress  1/2 frame 1 (attempt 1)',
    expect.stringMatching(/^succeeded {2}attempt 1 on [0-9a-f]{6}$/),
    expect.stringMatching(
      new RegExp(
        `^${lease.id} succeeded on [0-9a-f]{6} \\(1 files: peerway jobs show ${lease.id}\\)$`,
      ),
    ),
  ]);

  // show: the attempt, the file's absolute URL, the output; --download saves the file
  const dir = join(home, 'out');
  const show = await peerway(['jobs', 'show', lease.id, '--download', dir]);
  expect(show.code).toBe(0);
  expect(show.stdout).toContain(`${lease.id}  simulation  succeeded`);
  expect(show.stdout).toMatch(/1 +[0-9a-f]{6} .* succeeded/);
  expect(show.stdout).toContain(`${srv.server.url}/api/jobs/${lease.id}/files/frame.txt`);
  expect(show.stdout).toMatch(/"frames": 2/);
  expect(show.stderr).toContain(`saved ${join(dir, 'frame.txt')}`);
  expect(readFileSync(join(dir, 'frame.txt'), 'utf8')).toBe('frame one');
}, 180_000);

it('exits 1 when the job ends dead, with its error on stderr', async () => {
  const run = peerway(['jobs', 'submit', '--type', 'simulation', '--max-attempts', '1', '--wait']);
  worker.pull(1);
  const lease = await worker.lease(20_000);
  worker.started(lease);
  worker.fail(lease, 'the GPU fell off the bus');
  const r = await run;
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/dead {2}attempt 1 on [0-9a-f]{6}: the GPU fell off the bus/);
  expect(r.stderr).toContain(`${lease.id} is dead after 1 attempts: the GPU fell off the bus`);

  // retry queues it again; show --follow follows it to the end (exit 0)
  const retry = await peerway(['jobs', 'retry', lease.id]);
  expect(retry.code).toBe(0);
  expect(retry.stdout).toContain(`Retrying ${lease.id}: queued`);
  const out = printed();
  const follow = peerway(['jobs', 'show', lease.id, '--follow'], out.feed);
  await out.when(/queued/);
  worker.pull(1);
  const again = await worker.lease();
  expect(again.id).toBe(lease.id);
  worker.started(again);
  worker.succeed(again, 'ok');
  const f = await follow;
  expect(f.code).toBe(0);
  expect(f.stdout).toMatch(/succeeded {2}attempt \d on [0-9a-f]{6}/);

  const dead = await peerway(['jobs', 'list', '--state', 'succeeded', '--json']);
  expect(JSON.parse(dead.stdout).jobs.map((j: { id: string }) => j.id)).toContain(lease.id);
}, 180_000);

it('warns on stderr when no worker can run it, waits no longer than --wait-timeout (exit 2), and cancels it', async () => {
  const r = await peerway([
    'jobs',
    'submit',
    '--type',
    'simulation',
    '--require',
    'region=mars',
    '--wait',
    '--wait-timeout',
    '1',
  ]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^warning: .*region/m);
  const id = idOf(r.stdout);
  expect(r.stderr).toContain(`${id} is still queued after 1 s`);

  const list = await peerway(['jobs', 'list', '--state', 'queued']);
  expect(list.stdout).toMatch(new RegExp(`^${id} +simulation +queued +0 +- +0/3`, 'm'));

  const cancel = await peerway(['jobs', 'cancel', id]);
  expect(cancel.stdout).toBe(`Cancelled ${id}: cancelled\n`);
  const show = await peerway(['jobs', 'show', id, '--json']);
  expect(JSON.parse(show.stdout)).toMatchObject({ id, state: 'cancelled' });
  // following a cancelled job ends at once, as a failure
  expect((await peerway(['jobs', 'show', id, '--follow'])).code).toBe(1);

  const strict = await peerway([
    'jobs',
    'submit',
    '--type',
    'simulation',
    '--require',
    'region=mars',
    '--strict',
  ]);
  expect(strict.code).toBe(1);
  expect(strict.stderr).toMatch(/refused \(strict\): .*region/);
}, 180_000);

it('refuses bad flags and bad jobs in words, naming the flag', async () => {
  const local = await peerway(['jobs', 'submit', '--type', 'simulation', '--priority', 'high']);
  expect(local.code).toBe(1);
  expect(local.stderr).toBe('peerway: --priority high: give a whole number\n');

  const file = join(home, 'input.json');
  writeFileSync(file, '{"delayMs": -1}');
  const server = await peerway(['jobs', 'submit', '--type', 'simulation', '--input', `@${file}`]);
  expect(server.code).toBe(1);
  expect(server.stderr).toMatch(/^peerway: input\.delayMs \(--input\): /m);

  const type = await peerway(['jobs', 'submit', '--type', 'nope']);
  expect(type.code).toBe(1);
  expect(type.stderr).toMatch(
    /type \(--type\): type must be one of http, container, comfyui, simulation/,
  );

  const other = await makeUser(srv.server);
  const mine = await peerway(['jobs', 'submit', '--type', 'simulation', '--json']);
  const id = JSON.parse(mine.stdout).id as string;
  const theirs = await peerway(['jobs', 'show', id], () => {}, other.token);
  expect(theirs.code).toBe(1);
  expect(theirs.stderr).toContain(`you have no job ${id}`);
  expect((await peerway(['jobs', 'cancel', id])).code).toBe(0);

  // a page of the list ends with the command for the next one
  const ids = (out: string) => [...out.matchAll(/^([0-9a-f]{16}) /gm)].map((m) => m[1]);
  const first = await peerway(['jobs', 'list', '--limit', '2']);
  expect(ids(first.stdout)).toHaveLength(2);
  const more = /^\(more: peerway jobs list (.*)\)$/m.exec(first.stdout)![1]!.split(' ');
  expect(more.slice(0, 3)).toEqual(['--limit', '2', '--before']);
  const second = await peerway(['jobs', 'list', ...more]);
  expect(ids(second.stdout)).toHaveLength(2);
  expect(ids(second.stdout).filter((x) => ids(first.stdout).includes(x))).toEqual([]);
}, 180_000);

it('runs a job on the real agent (peerway-agent run --jobs) from submit --wait to its output', async () => {
  const other = await makeUser(srv.server);
  const agentHome = mkdtempSync(join(tmpdir(), 'pw-cli-jobs-agent-'));
  const agent = spawn(
    process.execPath,
    [
      AGENT_BIN,
      'run',
      '--server',
      srv.server.url,
      '--token',
      other.token,
      '--jobs',
      '--connector',
      'simulation',
    ],
    {
      env: { ...process.env, PEERWAY_HOME: agentHome, PEERWAY_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    },
  );
  try {
    await until(
      async () =>
        (await api(srv.server, 'GET', '/api/workers', { token: other.token })).json.workers.length,
      'the agent to be a worker',
      60_000,
    );
    const r = await peerway(
      [
        'jobs',
        'submit',
        '--type',
        'simulation',
        '--input',
        '{"delayMs": 600, "progressSteps": 2, "output": {"answer": 42}}',
        '--wait',
      ],
      () => {},
      other.token,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/running {2}attempt 1 on [0-9a-f]{6}/);
    expect(r.stdout).toMatch(/progress {2}/);
    expect(r.stdout).toMatch(/succeeded on [0-9a-f]{6}/);
    const id = idOf(r.stdout);
    const show = await peerway(['jobs', 'show', id, '--json'], () => {}, other.token);
    expect(JSON.parse(show.stdout)).toMatchObject({ state: 'succeeded', output: { answer: 42 } });
  } finally {
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
    rmSync(agentHome, { recursive: true, force: true });
  }
}, 180_000);
