/**
 * Several processes on one SQLite file (a server and the `users`/`tokens`
 * commands, or a restart overlapping the old process) applying plans to one
 * deployment at once: every plan either applies or fails with the typed
 * PlanConflictError, never a raw SQLITE_BUSY, and none applies twice from
 * one version.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { testSpec } from '../src/store/contract';
import { SqliteStore } from '../src/store/sqlite';

const dir = mkdtempSync(join(tmpdir(), 'peerway-store-procs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REGISTER = resolve(import.meta.dirname, '../../scripts/dev-register.mjs');
const SQLITE = resolve(import.meta.dirname, '../src/store/sqlite.ts');
const PROCESSES = 3;
const ATTEMPTS = 150;

/** One planner: waits for "go" on stdin, then reads and plans ATTEMPTS times; prints its tally. */
const PLANNER = `
await import(${JSON.stringify(REGISTER)});
const { SqliteStore } = await import(${JSON.stringify(SQLITE)});
const [dir, node, attempts] = process.argv.slice(1);
const store = new SqliteStore(dir);
const tally = { wins: 0, conflicts: 0, errors: [] };
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
for (let i = 0; i < Number(attempts); i++) {
  const d = await store.getDeployment('blog');
  try {
    await store.putAllocations('blog', d.version, {
      now: Date.now(),
      place: [{ nodeId: node, resources: { cpuMillis: 10, memoryBytes: 1, gpu: 0 } }],
    });
    tally.wins++;
  } catch (e) {
    if (e.name === 'PeerwayError' && e.why === 'stale_version') tally.conflicts++;
    else tally.errors.push(String(e.code ?? '') + ' ' + e.message);
  }
}
await store.close();
process.stdout.write(JSON.stringify(tally) + '\\n');
`;

interface Tally {
  wins: number;
  conflicts: number;
  errors: string[];
}

function planner(node: string) {
  const proc = spawn(
    process.execPath,
    ['--input-type=module', '-e', PLANNER, dir, node, String(ATTEMPTS)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  const ready = new Promise<void>((res, rej) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) res();
    });
    proc.once('exit', (code) => rej(new Error(`planner exited ${code} before it was ready`)));
  });
  const done = new Promise<Tally>((res, rej) => {
    proc.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`planner exited ${code}: ${out}`));
      res(JSON.parse(out.slice('ready\n'.length)) as Tally);
    });
  });
  return { proc, ready, done };
}

it('plans from several processes at once: each applies or is a typed conflict, none twice', async () => {
  const store = new SqliteStore(dir);
  await store.migrate();
  const u = await store.createUser({
    email: 'a@x',
    passwordHash: null,
    isAdmin: false,
    externalSubject: null,
  });
  await store.putDeployment({ name: 'blog', ownerId: u.id, spec: testSpec('blog'), now: 1 });
  const planners = Array.from({ length: PROCESSES }, (_, i) => planner(`n${i}`));
  try {
    await Promise.all(planners.map((p) => p.ready));
    for (const p of planners) p.proc.stdin.end('go\n');
    const tallies = await Promise.all(planners.map((p) => p.done));
    expect(tallies.flatMap((t) => t.errors)).toEqual([]);
    const wins = tallies.reduce((n, t) => n + t.wins, 0);
    expect(wins + tallies.reduce((n, t) => n + t.conflicts, 0)).toBe(PROCESSES * ATTEMPTS);
    // every win moved the version by one and placed one allocation: no version applied twice
    expect((await store.getDeployment('blog'))?.version).toBe(1 + wins);
    expect(await store.listAllocations({ deployment: 'blog' })).toHaveLength(wins);
  } finally {
    for (const p of planners) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await store.close();
  }
});
