/** The job store contract on a real redis-server (Debian), started by the test. */
import { afterAll, beforeAll } from 'vitest';
import { runJobStoreContract } from '../src/store/jobs-contract';
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
