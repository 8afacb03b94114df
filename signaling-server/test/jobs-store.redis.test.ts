/** The job store contract on a real redis-server (Debian), started by the test. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runJobStoreContract, testJob, testProfile } from '../src/store/jobs-contract';
import { RedisStore } from '../src/store/redis';
import { startRedis } from './helpers';

let redis: Awaited<ReturnType<typeof startRedis>>;
let db = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

runJobStoreContract(
  'Redis',
  // each test gets its own empty database of the same server
  async () => {
    const s = new RedisStore(redis.url(++db));
    await s.redis.flushdb();
    await s.migrate();
    return s;
  },
  // another connection to the same database, as another server instance has
  async () => {
    const s = new RedisStore(redis.url(db));
    await s.migrate();
    return s;
  },
);

it('runs its scripts again after Redis forgot them (a restart, SCRIPT FLUSH)', async () => {
  const s = new RedisStore(redis.url(++db));
  try {
    await s.redis.flushdb();
    await s.migrate();
    await s.submitJob(testJob('a', 'u1'));
    await s.redis.script('FLUSH');
    const j = await s.leaseJob({
      nodeId: 'n1',
      submitters: ['u1'],
      profile: testProfile(),
      now: Date.now(),
      leaseMs: 1000,
      leaseTokenHash: 'h',
    });
    expect(j).toMatchObject({ id: 'a', state: 'leased', leaseNodeId: 'n1' });
  } finally {
    await s.close();
  }
});
