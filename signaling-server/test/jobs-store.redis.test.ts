/** The job store contract on a real redis-server (Debian), started by the test. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runJobStoreContract, testJob, testProfile } from '../src/store/jobs-contract';
import { RedisStore } from '../src/store/redis';
import { GROUP_IDLE_MS } from '../src/store/jobs-redis-scripts';
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

/**
 * The lease reads candidates from the groups it read last, while the
 * groups' version has not moved. These check that a group that fills
 * elsewhere is never missed, and that a warm lease is one script call.
 */
describe('the lease from cached groups', () => {
  const T = 1_800_000_000_000;
  const req = (nodeId: string, models: string[] = []) => ({
    nodeId,
    submitters: '*' as const,
    profile: testProfile(['simulation'], { models }),
    now: T + 1000,
    leaseMs: 30_000,
    leaseTokenHash: 'h',
  });
  let a: RedisStore;
  let b: RedisStore;
  beforeEach(async () => {
    a = new RedisStore(redis.url(++db));
    await a.redis.flushdb();
    await a.migrate();
    b = new RedisStore(redis.url(db));
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it("leases a job of a group another instance filled after this one's groups were read", async () => {
    await a.submitJob(testJob('j1', 'u1', { now: T }));
    expect(await a.leaseJob(req('n1', ['m1']))).toMatchObject({ id: 'j1' }); // reads and keeps the groups
    expect(await a.leaseJob(req('n1', ['m1']))).toBeNull(); // from them: nothing waits
    // instance B: a new submitter, a new group; and j1's group fills again
    await b.submitJob(testJob('j2', 'u2', { now: T, requirements: { models: ['m1'] } }));
    expect(await a.leaseJob(req('n1', ['m1']))).toMatchObject({ id: 'j2', state: 'leased' });
  });

  it('leases a retry that came due in a group no one had read', async () => {
    await a.submitJob(testJob('r1', 'u1', { now: T, requirements: { models: ['m9'] } }));
    const l = await a.leaseJob(req('n1', ['m9']));
    await a.endAttempt(
      l!.id,
      1,
      { outcome: 'failed', error: 'x', retryable: true, retryAt: T + 500 },
      T + 100,
    );
    expect(await a.leaseJob({ ...req('n1', ['m9']), now: T + 200 })).toBeNull(); // not due yet
    expect(await a.leaseJob({ ...req('n1', ['m9']), now: T + 600 })).toMatchObject({
      id: 'r1',
      attempts: [{ attempt: 1 }, { attempt: 2 }],
    });
  });

  it('keeps an emptied group listed for a while, then drops it, and lists it again when it fills', async () => {
    const listed = () => a.redis.smembers('pw:jobgroups:u1');
    await a.submitJob(testJob('g1', 'u1', { now: T }));
    expect(await a.leaseJob(req('n1'))).toMatchObject({ id: 'g1' });
    expect(await listed()).toHaveLength(1); // empty, still listed: refilling it is no new version
    const v = await a.redis.get('pw:jobgroups:v');
    await a.submitJob(testJob('g2', 'u1', { now: T + 10 }));
    expect(await a.redis.get('pw:jobgroups:v')).toBe(v);
    expect(await a.leaseJob(req('n1'))).toMatchObject({ id: 'g2' });
    // a new group makes the next lease read the groups: the one empty past the idle time goes
    await b.submitJob(testJob('x1', 'u2', { now: T, requirements: { models: ['mx'] } }));
    expect(
      await a.leaseJob({ ...req('n1', ['mx']), now: T + 1000 + GROUP_IDLE_MS + 1 }),
    ).toMatchObject({ id: 'x1' });
    expect(await listed()).toEqual([]);
    // filling it again lists it again, and a server with the old list sees it
    await b.submitJob(testJob('g3', 'u1', { now: T }));
    expect(await a.leaseJob(req('n1'))).toMatchObject({ id: 'g3' });
  });

  it('takes one script call per lease once the groups are read (no reads of the groups)', async () => {
    for (let i = 0; i < 5; i++) await a.submitJob(testJob(`k${i}`, 'u1', { now: T }));
    await a.leaseJob(req('n1'));
    await a.redis.config('RESETSTAT');
    for (let i = 1; i < 5; i++) expect(await a.leaseJob(req('n1'))).toMatchObject({ id: `k${i}` });
    const stats = await a.redis.info('commandstats');
    const calls = (cmd: string) =>
      Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('evalsha')).toBe(4);
    expect(calls('smembers') + calls('zcount')).toBe(0);
  });
});
