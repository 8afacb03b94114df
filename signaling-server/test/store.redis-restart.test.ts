/**
 * A deployment's state in Redis survives redis-server being killed (-9) and
 * started again on its append-only file: the Lua scripts' writes are in the
 * AOF. The server runs with `appendfsync always`, so what a call was told is
 * written is on disk (the default, everysec, may lose the last second).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { testResources, testSpec } from '../src/store/contract';
import { RedisStore } from '../src/store/redis';

const dir = mkdtempSync(join(tmpdir(), 'pw-redis-restart-'));
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
    ],
    { stdio: 'pipe' },
  );
  procs.push(proc);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) resolve();
    });
    proc.once('exit', (c) => reject(new Error(`redis-server exited ${c}: ${out}`)));
  });
  return proc;
}

it('keeps deployments, allocations, events, grants and reports across kill -9', async () => {
  const port = 21000 + Math.floor(Math.random() * 20000);
  const first = await startRedis(port);
  let store = new RedisStore(`redis://127.0.0.1:${port}/0`);
  await store.migrate();
  const u = await store.createUser({
    email: 'a@x',
    passwordHash: null,
    isAdmin: false,
    externalSubject: null,
  });
  await store.putDeployment({ name: 'blog', ownerId: u.id, spec: testSpec('blog'), now: 1 });
  await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now: 1 });
  await store.putNodeResources('n1', testResources);
  await store.addDeployGrant('n1', u.id);
  const resources = { cpuMillis: 250, memoryBytes: 1024 ** 2, gpu: 0 };
  const plan = await store.putAllocations('blog', 1, {
    now: 2,
    place: [{ nodeId: 'n1', resources }],
  });
  const running = await store.updateAllocationState({
    id: plan.placed[0]!.id,
    nodeId: 'n1',
    state: 'running',
    reason: null,
    now: 3,
  });
  await store.addDeploymentEvent('blog', { at: 3, kind: 'state', message: 'running' });
  const before = await store.getDeployment('blog');
  store.redis.disconnect();
  const gone = new Promise((r) => first.once('exit', r));
  first.kill('SIGKILL');
  await gone;

  await startRedis(port);
  store = new RedisStore(`redis://127.0.0.1:${port}/0`);
  try {
    await store.migrate();
    expect(await store.getDeployment('blog')).toEqual(before);
    expect(before?.version).toBe(2);
    expect(await store.listAllocations()).toEqual([running]);
    expect(await store.allocatedOn('n1')).toEqual(resources);
    expect(await store.listDeploymentEvents('blog', 10)).toEqual([
      { at: 3, kind: 'state', message: 'running', allocation: null },
    ]);
    expect(await store.deployableNodes(u.id)).toEqual(['n1']);
    expect((await store.getNode('n1'))?.resources).toEqual(testResources);
  } finally {
    await store.close();
  }
});
