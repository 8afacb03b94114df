/** The store contract on a real redis-server (Debian), started by the test with AOF on. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runStoreContract, testResources, testSpec } from '../src/store/contract';
import { RedisStore } from '../src/store/redis';
import { startRedis } from './helpers';

let redis: Awaited<ReturnType<typeof startRedis>>;
let db = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

async function freshStore(): Promise<RedisStore> {
  const s = new RedisStore(redis.url(++db));
  await s.redis.flushdb();
  await s.migrate();
  return s;
}

runStoreContract(
  'Redis',
  // Each test gets its own empty database of the same server.
  freshStore,
  // another connection to the same database, as another server instance has
  async () => {
    const s = new RedisStore(redis.url(db));
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
    // what an older server or a hand edit could leave
    await store.redis.hset(
      'pw:deploy:blog',
      'spec',
      JSON.stringify({ ...testSpec('blog'), replicas: 0 }),
    );
    await store.redis.hset('pw:node:n1', 'resources', '{"capacity":1}');
    await expect(store.getDeployment('blog')).rejects.toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/deployment "blog".*replicas/),
    });
    expect((await store.getNode('n1'))?.resources).toBeNull();
  } finally {
    await store.close();
  }
});

it('moves a schema-2 database to the current schema (4) and keeps what it held', async () => {
  const store = await freshStore();
  try {
    await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now: 1 });
    await store.redis.hset('pw:meta', 'schema', '2');
    await store.migrate();
    expect(await store.redis.hget('pw:meta', 'schema')).toBe('4');
    expect(await store.getNode('n1')).toMatchObject({ name: 'one', resources: null });
  } finally {
    await store.close();
  }
});
