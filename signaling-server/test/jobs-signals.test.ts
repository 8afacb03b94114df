/**
 * The jobs broker's signals between instances over a real redis-server: an
 * instance alone on the channel publishes nothing (counted by Redis's own
 * `cmdstat_publish`), a second instance is heard at once through its
 * hello and then gets every signal, and when it leaves the first goes
 * quiet again.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from './helpers';
import { until } from './cluster-fixtures';
import { RedisJobSignals, type JobSignal } from '../src/jobs/signals';
import { logger } from '../src/logger';

let redis: Awaited<ReturnType<typeof startRedis>>;
let probe: Redis;
const open: RedisJobSignals[] = [];

beforeAll(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url(3));
});
afterAll(async () => {
  for (const s of open) await s.close();
  probe?.disconnect();
  await redis?.stop();
});

/** PUBLISH commands the redis-server has run so far. */
async function publishes(): Promise<number> {
  const info = await probe.info('commandstats');
  return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

function instance(heard: JobSignal[]): Promise<RedisJobSignals> {
  const s = new RedisJobSignals(redis.url(3), logger('jobs-test'));
  open.push(s);
  return s.start((sig) => heard.push(sig)).then(() => s);
}

const waiting = (key: string): JobSignal => ({ t: 'waiting', submitterId: 'u1', key });

describe('jobs signals over Redis', () => {
  it('publishes nothing while alone, everything once another instance is there, and stops when it leaves', async () => {
    const heardA: JobSignal[] = [];
    const a = await instance(heardA);
    await until(() => !a.sending, 'A knows it is alone');
    const before = await publishes();
    for (let i = 0; i < 5; i++) a.publish(waiting(`alone-${i}`));
    await new Promise((r) => setTimeout(r, 100));
    expect(await publishes()).toBe(before);

    const heardB: JobSignal[] = [];
    const b = await instance(heardB);
    // B's hello reaches A at once; A's next signal reaches B
    await until(() => a.sending, 'A hears B');
    a.publish(waiting('to-b'));
    b.publish(waiting('to-a'));
    await until(() => heardB.length === 1 && heardA.length === 1, 'each hears the other');
    expect(heardB[0]).toEqual(waiting('to-b'));
    expect(heardA[0]).toEqual(waiting('to-a'));

    await b.close();
    await until(() => !a.sending, 'A alone again', 5000);
  });
});
