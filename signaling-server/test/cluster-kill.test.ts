/**
 * `kill -9` of a real server process in the middle of deploys, 20 times at
 * random moments, on one store (a SQLite file; then a real redis-server):
 * between kills the store is read directly and must be whole — every
 * deployment the API accepted is there with its spec, no allocation
 * without its deployment, no more replicas desired `run` than an accepted
 * spec asks for, versions that only go up. A last start on the same store
 * converges: every replica placed on the test's nodes, once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { generateIdentity, type NodeIdentity } from '@peerway/protocol/node';
import type { AllocationAssignment, DeploymentSpec } from '@peerway/protocol';
import { parseDeploymentSpec } from '@peerway/protocol';
import { api, makeUser, randomEmail, randomPassword, startRedis, withServer } from './helpers';
import { ClusterAgent, report, spec, uniqueName, until } from './cluster-fixtures';
import type { PeerwayServer } from '../src/server';
import type { Store } from '../src/store/store';
import { SqliteStore } from '../src/store/sqlite';
import { RedisStore } from '../src/store/redis';

const BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');
const run = promisify(execFile);
const KILLS = 20;
/** Fewer against Redis: each start there takes longer. */
const REDIS_KILLS = 10;
const MAX_KILL_DELAY_MS = 300;
const NAMES = ['kill-a', 'kill-b', 'kill-c', 'kill-d'];
const procs: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  dir: string;
  redisUrl?: string;
}

const storeArgs = (s: Setup) => [
  '--data-dir',
  s.dir,
  ...(s.redisUrl ? ['--redis-url', s.redisUrl] : []),
];

async function startServer(s: Setup): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    process.execPath,
    [BIN, '--port', '0', ...storeArgs(s), '--reschedule-after', '30s'],
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
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => rej(new Error(`server exited ${code}: ${out}`)));
  });
  return { proc, url };
}

async function kill9(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
}

/** Joins each node to the server at `url` (claimed by `token`'s user); each reports its replicas running. */
async function joinAll(url: string, token: string, ids: NodeIdentity[]) {
  const agents = ids.map((id) => new ClusterAgent({ url } as PeerwayServer, id));
  const sets = new Map<string, AllocationAssignment[]>();
  await Promise.all(
    agents.map(async (a) => {
      sets.set(a.identity.nodeId, await a.join(token, report({ cpuCores: 4 })));
      a.ws.on('message', (raw) => {
        const m = JSON.parse(raw.toString()) as { type: string; allocations?: unknown };
        if (m.type !== 'allocations') return;
        const list = m.allocations as AllocationAssignment[];
        sets.set(a.identity.nodeId, list);
        for (const x of list) if (a.ws.readyState === a.ws.OPEN) a.status(x.id, 'running');
      });
    }),
  );
  return { agents, sets };
}

/** A random spec for one of NAMES: 1–3 replicas, a random image tag (so some updates replace). */
function randomSpec(name: string): DeploymentSpec {
  const r = parseDeploymentSpec({
    name,
    image: `127.0.0.1:5000/peerway-test/web:${1 + Math.floor(Math.random() * 3)}`,
    port: 8080,
    replicas: 1 + Math.floor(Math.random() * 3),
    resources: { cpu: 0.25, memory: '64MiB' },
    access: Math.random() < 0.5 ? 'private' : 'public',
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

function openStore(s: Setup): Store {
  return s.redisUrl ? new RedisStore(s.redisUrl) : new SqliteStore(s.dir);
}

async function killLoop(s: Setup, kills = KILLS) {
  const email = randomEmail();
  await run(process.execPath, [
    BIN,
    'users',
    'create',
    '--email',
    email,
    '--password',
    randomPassword(),
    ...storeArgs(s),
  ]);
  const token = (
    await run(process.execPath, [BIN, 'tokens', 'create', '--email', email, ...storeArgs(s)])
  ).stdout.trim();
  const nodes = [generateIdentity(), generateIdentity(), generateIdentity()];
  /** Per name: the specs the store may hold (the accepted one, and any sent after it without an answer). */
  const mayHold = new Map<string, DeploymentSpec[]>();
  const versions = new Map<string, number>();
  let answered = 0;
  const everAccepted = new Set<string>();

  for (let kill = 0; kill < kills; kill++) {
    const srv = await startServer(s);
    const { agents } = await joinAll(srv.url, token, nodes);
    // one request per name, at once; kill at a random moment among them
    const sent = NAMES.filter(() => Math.random() < 0.75).map((name) => ({
      name,
      spec: randomSpec(name),
    }));
    const accepted = new Set<string>();
    const requests = sent.map(async ({ name, spec }) => {
      try {
        const res = await fetch(`${srv.url}/api/deployments`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(spec),
        });
        if (res.status === 201 || res.status === 200) accepted.add(name);
        else throw new Error(`POST ${name}: ${res.status} ${await res.text()}`);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // the connection died with the server
      }
    });
    await new Promise((r) => setTimeout(r, Math.random() * MAX_KILL_DELAY_MS));
    await kill9(srv.proc);
    await Promise.all(requests);
    for (const a of agents) a.close();
    answered += accepted.size;
    for (const n of accepted) everAccepted.add(n);
    for (const { name, spec } of sent) {
      mayHold.set(name, accepted.has(name) ? [spec] : [...(mayHold.get(name) ?? []), spec]);
    }

    const store = openStore(s);
    try {
      const deployments = new Map((await store.listDeployments()).map((d) => [d.name, d]));
      const allocations = await store.listAllocations();
      for (const name of NAMES) {
        const d = deployments.get(name);
        const may = mayHold.get(name);
        if (!may) {
          expect(d, `${name} was never sent`).toBeUndefined();
          continue;
        }
        if (!d) {
          expect(everAccepted.has(name), `${name} was accepted but is gone (kill ${kill})`).toBe(
            false,
          );
          continue;
        }
        expect(may, `${name}'s spec (kill ${kill})`).toContainEqual(d.spec);
        if (accepted.has(name)) expect(d.spec).toEqual(may.at(-1));
        expect(d.version).toBeGreaterThanOrEqual(versions.get(name) ?? 1);
        versions.set(name, d.version);
        const svc = await store.getService(name);
        expect(svc?.ownerId, `${name}'s service name is reserved`).toBe(d.ownerId);
        if (accepted.has(name)) {
          // answered: its plan was applied, at most the spec's replicas run
          const runs = allocations.filter((a) => a.deployment === name && a.desired === 'run');
          expect(runs.length, `${name} replicas (kill ${kill})`).toBeLessThanOrEqual(
            d.spec.replicas,
          );
          expect(svc?.access).toBe(d.spec.access);
        }
      }
      // never an allocation without its deployment, nor one on an unknown node
      const known = new Set(nodes.map((n) => n.nodeId));
      for (const a of allocations) {
        expect(deployments.has(a.deployment), `allocation ${a.id} has its deployment`).toBe(true);
        expect(known.has(a.nodeId)).toBe(true);
        expect(a.version).toBeGreaterThanOrEqual(1);
      }
      expect(new Set(allocations.map((a) => a.id)).size).toBe(allocations.length);
      // never more held on a node than it offers
      for (const n of nodes) {
        const cpu = allocations
          .filter((a) => a.nodeId === n.nodeId && a.desired === 'run')
          .reduce((t, a) => t + a.resources.cpuMillis, 0);
        expect(cpu).toBeLessThanOrEqual(4000);
      }
    } finally {
      await store.close();
    }
  }
  expect(answered, 'some deploys were answered before their kill').toBeGreaterThan(0);

  // a last start converges: every replica placed once, on the test's nodes
  const srv = await startServer(s);
  const { agents, sets } = await joinAll(srv.url, token, nodes);
  const store = openStore(s);
  try {
    const want = new Map((await store.listDeployments()).map((d) => [d.name, d.spec]));
    await until(
      () => {
        const got = new Map<string, string[]>();
        for (const list of sets.values())
          for (const x of list) got.set(x.deployment, [...(got.get(x.deployment) ?? []), x.id]);
        for (const [name, spec] of want) {
          const ids = got.get(name) ?? [];
          if (ids.length !== spec.replicas || new Set(ids).size !== ids.length) return false;
          // each set carries the stored spec, not an older one
          for (const list of sets.values())
            for (const x of list)
              if (x.deployment === name && x.spec.image !== spec.image) return false;
        }
        return [...got.keys()].every((n) => want.has(n));
      },
      'the nodes hold every replica once',
      30_000,
    );
    const allocs = await store.listAllocations();
    for (const [name, spec] of want) {
      const runs = allocs.filter((a) => a.deployment === name && a.desired === 'run');
      expect(runs.length, `${name} after converging`).toBe(spec.replicas);
      expect(await store.getService(name)).toMatchObject({ access: spec.access });
    }
  } finally {
    await store.close();
    for (const a of agents) a.close();
    srv.proc.kill('SIGTERM');
    await new Promise((r) => srv.proc.once('exit', r));
  }
}

describe('kill -9 mid-deploy', () => {
  it('leaves a SQLite store whole, and a restart converges', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-kill-'));
    dirs.push(dir);
    await killLoop({ dir });
  }, 480_000);

  it('leaves a Redis store whole, and a restart converges', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-kill-redis-'));
    dirs.push(dir);
    const redis = await startRedis();
    try {
      await killLoop({ dir, redisUrl: redis.url(7) }, REDIS_KILLS);
    } finally {
      await redis.stop();
    }
  }, 480_000);
});

it('a spec written without its service access (killed between the two writes) gets it on the next pass', async () => {
  const srv = await withServer();
  try {
    const { user, token } = await makeUser(srv.server);
    const name = uniqueName();
    const r = await api(srv.server, 'POST', '/api/deployments', {
      token,
      body: spec(name, { access: 'public' }),
    });
    expect(r.status).toBe(201);
    const next = parseDeploymentSpec(spec(name, { access: 'private' }));
    if (!next.ok) throw new Error('bad spec');
    // what `apply` had written when the process died: the spec, not yet the access
    await srv.server.store.putDeployment({
      name,
      ownerId: user.id,
      spec: next.spec,
      now: Date.now(),
    });
    expect(await srv.server.store.getService(name)).toMatchObject({ access: 'public' });
    const loop = srv.server.signaling.deployments;
    loop.kick();
    await loop.settled();
    expect(await srv.server.store.getService(name)).toMatchObject({ access: 'private' });
  } finally {
    await srv.stop();
  }
});
