import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runStoreContract, testResources, testSpec } from '../src/store/contract';
import { SqliteStore } from '../src/store/sqlite';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function freshStore(): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), 'peerway-store-'));
  dirs.push(dir);
  const s = new SqliteStore(dir);
  await s.migrate();
  await s.migrate(); // idempotent
  return s;
}

runStoreContract(
  'SQLite',
  freshStore,
  // another connection to the same file, as another process would open it
  async () => {
    const s = new SqliteStore(dirs.at(-1)!);
    await s.migrate();
    return s;
  },
);

it('reads back a stored spec only if it still validates; a report that no longer does reads as none', async () => {
  const store = await freshStore();
  try {
    const u = await store.createUser({
      email: 'a@x',
      passwordHash: null,
      isAdmin: false,
      externalSubject: null,
    });
    await store.putDeployment({ name: 'blog', ownerId: u.id, spec: testSpec('blog'), now: 1 });
    await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now: 1 });
    await store.putNodeResources('n1', testResources);
    // what an older or tampered-with file could hold, written beside the store
    const raw = new Database(join(dirs.at(-1)!, 'peerway.db'));
    raw
      .prepare('UPDATE deployments SET spec = ? WHERE name = ?')
      .run(JSON.stringify({ ...testSpec('blog'), replicas: 0 }), 'blog');
    raw.prepare('UPDATE nodes SET resources = ? WHERE id = ?').run('{"capacity":1}', 'n1');
    raw.close();
    await expect(store.getDeployment('blog')).rejects.toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/deployment "blog".*replicas/),
    });
    expect((await store.getNode('n1'))?.resources).toBeNull();
  } finally {
    await store.close();
  }
});
