/**
 * The job store contract: both JobStore implementations (SQLite, Redis)
 * must pass this suite. Call it with a factory that returns a fresh,
 * migrated, empty store, and one that opens another instance over the data
 * of the store made last (another process on the file, another server
 * instance on the Redis).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  JOB_DEFAULTS,
  MAX_JOB_PRIORITY,
  type JobRequirements,
  type JobType,
  type NodeResources,
  type WorkerConnector,
  type WorkerProfile,
} from '@peerway/protocol';
import type { JobStore, LeaseRequest, NewJob } from './jobs';

const GiB = 1024 ** 3;
const T0 = 1_800_000_000_000;

/** A job of `submitterId` with the defaults and `extra` over them. */
export function testJob(
  id: string,
  submitterId: string,
  extra: Partial<Omit<NewJob, 'requirements'>> & { requirements?: Partial<JobRequirements> } = {},
): NewJob {
  const { requirements, ...rest } = extra;
  return {
    id,
    submitterId,
    type: 'simulation',
    input: { delayMs: 1 },
    priority: 0,
    timeoutS: 60,
    maxAttempts: 3,
    backoff: JOB_DEFAULTS.backoff,
    now: T0,
    ...rest,
    requirements: { models: [], labels: {}, ...requirements },
  };
}

/** A node's report: `gpus` GPUs, `memoryGiB` of memory, `labels`. */
export function testNodeResources(
  gpus = 0,
  memoryGiB = 8,
  labels: Record<string, string> = {},
): NodeResources {
  return {
    capacity: {
      cpuCores: 4,
      memoryBytes: memoryGiB * GiB,
      diskFreeBytes: 10 * GiB,
      gpus: Array.from({ length: gpus }, () => ({ model: 'RTX', memoryBytes: 8 * GiB })),
      os: 'linux',
      arch: 'x64',
      runtime: null,
    },
    offer: { cpuCores: 2, memoryBytes: null },
    labels,
    deployments: false,
  };
}

/** A worker with one connector of each `types` (and `extra` on every connector). */
export function testProfile(
  types: JobType[] = ['simulation'],
  extra: Partial<Omit<WorkerConnector, 'type'>> = {},
  resources: NodeResources | null = testNodeResources(),
): WorkerProfile {
  return {
    connectors: types.map((type) => ({ type, services: [], models: [], images: [], ...extra })),
    resources,
  };
}

export function runJobStoreContract(
  name: string,
  makeStore: () => Promise<JobStore & { close(): Promise<void> }>,
  openAgain: () => Promise<JobStore & { close(): Promise<void> }>,
): void {
  describe(`JobStore contract: ${name}`, () => {
    let store: JobStore & { close(): Promise<void> };
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });
    const lease = (over: Partial<LeaseRequest> = {}) =>
      store.leaseJob({
        nodeId: 'n1',
        submitters: '*',
        profile: testProfile(),
        now: T0 + 1000,
        leaseMs: 30_000,
        leaseTokenHash: 'h1',
        ...over,
      });
    const leaseAll = async (over: Partial<LeaseRequest> = {}) => {
      const ids: string[] = [];
      for (;;) {
        const j = await lease(over);
        if (!j) return ids;
        ids.push(j.id);
      }
    };

    it('removes final jobs older than the retention, with their key, files and indexes, and nothing else', async () => {
      await store.submitJob(testJob('done', 'u1', { idempotencyKey: 'k' }));
      await store.submitJob(testJob('gone', 'u1', { maxAttempts: 1 }));
      await store.submitJob(testJob('off', 'u2'));
      await store.submitJob(testJob('waits', 'u1'));
      for (const id of ['done', 'gone']) {
        const j = await lease({ now: T0 + 1000 });
        expect(j?.id).toBe(id);
        if (id === 'done') {
          expect(
            await store.addJobFile(id, 1, { name: 'out.png', bytes: 3, contentType: 'image/png' }),
          ).toBe(true);
          await store.endAttempt(id, 1, { outcome: 'succeeded', output: 1 }, T0 + 2000);
        } else
          await store.endAttempt(
            id,
            1,
            { outcome: 'failed', error: 'x', retryable: false, retryAt: T0 },
            T0 + 2000,
          );
      }
      await store.cancelJob('off', T0 + 9000); // final, but younger
      // a waiting one of any age stays
      expect(await store.removeEndedJobs(T0 + 5000, 100).then((ids) => ids.sort())).toEqual([
        'done',
        'gone',
      ]);
      expect(await store.getJob('done')).toBeNull();
      expect(await store.getJob('gone')).toBeNull();
      expect((await store.getJob('off'))?.state).toBe('cancelled');
      expect((await store.getJob('waits'))?.state).toBe('queued');
      const all = await store.listJobs({ limit: 100 });
      expect(all.jobs.map((j) => j.id).sort()).toEqual(['off', 'waits']);
      expect((await store.listJobs({ limit: 100, state: 'succeeded' })).jobs).toEqual([]);
      expect((await store.countJobs()).succeeded).toBe(0);
      // the idempotency key went with its job: the same key makes a new one
      const again = await store.submitJob(testJob('done2', 'u1', { idempotencyKey: 'k' }));
      expect(again).toMatchObject({ created: true, job: { id: 'done2' } });
      expect(await store.removeEndedJobs(T0 + 5000, 100)).toEqual([]);
      // at most `limit` at a time
      expect(await store.removeEndedJobs(T0 + 10_000, 0)).toEqual([]);
      expect(await store.removeEndedJobs(T0 + 10_000, 1)).toEqual(['off']);
    });

    it('queues a job and reads it back whole', async () => {
      const { job, created } = await store.submitJob(
        testJob('j1', 'u1', {
          type: 'container',
          image: 'reg/app:1',
          input: { image: 'reg/app:1', deep: [1, { a: 'b' }] },
          requirements: { gpu: 1, memory: 2 * GiB, labels: { zone: 'a' }, models: ['m'] },
          priority: 5,
          idempotencyKey: 'k1',
        }),
      );
      expect(created).toBe(true);
      expect(job).toMatchObject({
        id: 'j1',
        submitterId: 'u1',
        type: 'container',
        image: 'reg/app:1',
        input: { image: 'reg/app:1', deep: [1, { a: 'b' }] },
        requirements: { gpu: 1, memory: 2 * GiB, labels: { zone: 'a' }, models: ['m'] },
        priority: 5,
        idempotencyKey: 'k1',
        timeoutS: 60,
        maxAttempts: 3,
        backoff: JOB_DEFAULTS.backoff,
        state: 'queued',
        attempts: [],
        files: [],
        createdAt: T0,
        updatedAt: T0,
      });
      expect(job.leaseNodeId).toBeUndefined();
      expect(await store.getJob('j1')).toEqual(job);
      expect(await store.getJob('nope')).toBeNull();
      const second = await store.submitJob(testJob('j2', 'u1'));
      expect(second.job.seq).toBeGreaterThan(job.seq);
    });

    it('leases by priority, then in submission order', async () => {
      await store.submitJob(testJob('a', 'u1', { priority: 0 }));
      await store.submitJob(testJob('b', 'u1', { priority: 10 }));
      await store.submitJob(testJob('c', 'u2', { priority: 0 }));
      await store.submitJob(testJob('d', 'u1', { priority: -5 }));
      await store.submitJob(testJob('e', 'u2', { priority: 10 }));
      await store.submitJob(testJob('f', 'u1', { priority: 0, requirements: { labels: {} } }));
      expect(await leaseAll()).toEqual(['b', 'e', 'a', 'c', 'f', 'd']);
      // the extremes keep their order (Redis scores stay exact doubles)
      expect((MAX_JOB_PRIORITY * 2 + 1) * 2 ** 32 - 1).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
      await store.submitJob(testJob('lo1', 'u1', { priority: -MAX_JOB_PRIORITY }));
      await store.submitJob(testJob('lo2', 'u1', { priority: -MAX_JOB_PRIORITY }));
      await store.submitJob(testJob('hi1', 'u1', { priority: MAX_JOB_PRIORITY }));
      await store.submitJob(testJob('hi2', 'u1', { priority: MAX_JOB_PRIORITY }));
      await store.submitJob(testJob('near', 'u1', { priority: MAX_JOB_PRIORITY - 1 }));
      expect(await leaseAll()).toEqual(['hi1', 'hi2', 'near', 'lo1', 'lo2']);
    });

    it('starts attempt 1 leased to the node', async () => {
      await store.submitJob(testJob('a', 'u1', { timeoutS: 100 }));
      const j = await lease({ nodeId: 'n7', leaseTokenHash: 'tok' });
      expect(j).toMatchObject({
        id: 'a',
        state: 'leased',
        leaseNodeId: 'n7',
        leaseExpiresAt: T0 + 1000 + 30_000,
        leaseTokenHash: 'tok',
        deadlineAt: T0 + 1000 + 100_000,
        attempts: [{ attempt: 1, nodeId: 'n7', leasedAt: T0 + 1000 }],
      });
      expect(await lease()).toBeNull();
      expect(await store.getJob('a')).toEqual(j);
    });

    it('matches types, services, models, GPUs, memory, labels and container images', async () => {
      const req = (id: string, extra: Parameters<typeof testJob>[2]) =>
        store.submitJob(testJob(id, 'u1', extra));
      await req('http-blog', { type: 'http', requirements: { service: 'blog' } });
      await req('comfy-sdxl', { type: 'comfyui', requirements: { models: ['sdxl', 'lora1'] } });
      await req('gpu2', { requirements: { gpu: 2 } });
      await req('mem16', { requirements: { memory: 16 * GiB } });
      await req('zone-b', { requirements: { labels: { zone: 'b' } } });
      await req('img-app', { type: 'container', image: 'reg/app:2' });
      await req('img-other', { type: 'container', image: 'reg/other:1' });

      // a simulation worker with 1 GPU, 8 GiB, zone a takes none of them
      expect(
        await leaseAll({
          profile: testProfile(['simulation'], {}, testNodeResources(1, 8, { zone: 'a' })),
        }),
      ).toEqual([]);
      // http: the service must be one of the connector's
      expect(await leaseAll({ profile: testProfile(['http'], { services: ['wiki'] }) })).toEqual(
        [],
      );
      expect(
        await leaseAll({ profile: testProfile(['http'], { services: ['wiki', 'blog'] }) }),
      ).toEqual(['http-blog']);
      // comfyui: every model
      expect(await leaseAll({ profile: testProfile(['comfyui'], { models: ['sdxl'] }) })).toEqual(
        [],
      );
      expect(
        await leaseAll({ profile: testProfile(['comfyui'], { models: ['lora1', 'sdxl', 'x'] }) }),
      ).toEqual(['comfy-sdxl']);
      // container: only allowed images
      expect(
        await leaseAll({ profile: testProfile(['container'], { images: ['reg/app:1'] }) }),
      ).toEqual([]);
      expect(
        await leaseAll({ profile: testProfile(['container'], { images: ['reg/app:*'] }) }),
      ).toEqual(['img-app']);
      // resources and labels
      expect(
        await leaseAll({
          profile: testProfile(['simulation'], {}, testNodeResources(2, 32, { zone: 'b' })),
        }),
      ).toEqual(['gpu2', 'mem16', 'zone-b']);
      expect((await store.getJob('img-other'))?.state).toBe('queued');
    });

    it('leases only jobs of submitters the node may serve; "*" serves every one', async () => {
      await store.submitJob(testJob('a1', 'alice'));
      await store.submitJob(testJob('b1', 'bob'));
      await store.submitJob(testJob('a2', 'alice'));
      expect(await leaseAll({ submitters: [] })).toEqual([]);
      expect(await leaseAll({ submitters: ['carol'] })).toEqual([]);
      expect(await leaseAll({ submitters: ['bob'] })).toEqual(['b1']);
      expect(await leaseAll({ submitters: ['carol', 'alice'] })).toEqual(['a1', 'a2']);
      await store.submitJob(testJob('c1', 'carol'));
      expect(await leaseAll({ submitters: '*' })).toEqual(['c1']);
    });

    it('one job per submitter and idempotency key, also when submits race', async () => {
      const first = await store.submitJob(testJob('j1', 'u1', { idempotencyKey: 'k' }));
      const again = await store.submitJob(
        testJob('j2', 'u1', { idempotencyKey: 'k', priority: 9 }),
      );
      expect(again).toEqual({ job: first.job, created: false });
      expect(await store.getJob('j2')).toBeNull();
      const other = await store.submitJob(testJob('j3', 'u2', { idempotencyKey: 'k' }));
      expect(other.created).toBe(true);
      expect(other.job.id).toBe('j3');

      const second = await openAgain();
      try {
        const racing = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? second : store).submitJob(testJob(`r${i}`, 'u3', { idempotencyKey: 'race' })),
          ),
        );
        expect(racing.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(racing.map((r) => r.job.id)).size).toBe(1);
        expect(await leaseAll({ submitters: ['u3'] })).toEqual([racing[0]!.job.id]);
      } finally {
        await second.close();
      }
    });

    it('renews a lease only for the holder of the current attempt; an expired one goes back at its place', async () => {
      await store.submitJob(testJob('a', 'u1'));
      await store.submitJob(testJob('b', 'u1'));
      const j = (await lease())!;
      expect(j.id).toBe('a');
      expect(await store.renewLease('a', 1, 'n2', T0 + 99_000)).toBe(false);
      expect(await store.renewLease('a', 2, 'n1', T0 + 99_000)).toBe(false);
      expect(await store.renewLease('a', 1, 'n1', T0 + 60_000)).toBe(true);
      expect((await store.getJob('a'))?.leaseExpiresAt).toBe(T0 + 60_000);
      expect(await store.expiredLeases(T0 + 59_000, 10)).toEqual([]);
      expect(await store.expiredLeases(T0 + 60_001, 10)).toEqual([{ id: 'a', attempt: 1 }]);
      const back = await store.endAttempt(
        'a',
        1,
        { outcome: 'lost', error: 'lease expired', retryable: true, retryAt: T0 + 60_001 },
        T0 + 60_001,
      );
      expect(back).toMatchObject({ state: 'queued', attempts: [{ attempt: 1, outcome: 'lost' }] });
      expect(back?.leaseNodeId).toBeUndefined();
      expect(await store.expiredLeases(T0 + 99_000, 10)).toEqual([]);
      // it was submitted before b, so it comes first again
      const again = await lease({ nodeId: 'n2', now: T0 + 61_000 });
      expect(again).toMatchObject({ id: 'a', leaseNodeId: 'n2' });
      expect(again?.attempts.map((x) => [x.attempt, x.nodeId])).toEqual([
        [1, 'n1'],
        [2, 'n2'],
      ]);
    });

    it('ends only the current attempt: a stale worker report changes nothing', async () => {
      await store.submitJob(testJob('a', 'u1'));
      await lease();
      expect(await store.markRunning('a', 1, 'n2', T0 + 1100)).toBe(false);
      expect(await store.markRunning('a', 1, 'n1', T0 + 1100)).toBe(true);
      expect((await store.getJob('a'))?.attempts[0]?.startedAt).toBe(T0 + 1100);
      await store.endAttempt(
        'a',
        1,
        { outcome: 'lost', error: 'gone', retryable: true, retryAt: T0 + 2000 },
        T0 + 2000,
      );
      await lease({ nodeId: 'n2', now: T0 + 3000 });
      const before = await store.getJob('a');
      // the first worker comes back and reports on attempt 1
      expect(
        await store.endAttempt('a', 1, { outcome: 'succeeded', output: 1 }, T0 + 4000),
      ).toBeNull();
      expect(await store.setProgress('a', 1, { value: 5, at: T0 + 4000 })).toBe(false);
      expect(
        await store.addJobFile('a', 1, { name: 'x', bytes: 1, contentType: 'text/plain' }),
      ).toBe(false);
      expect(await store.renewLease('a', 1, 'n1', T0 + 99_000)).toBe(false);
      expect(await store.getJob('a')).toEqual(before);
      // the current one succeeds, with its output, progress and files
      expect(
        await store.setProgress('a', 2, { value: 5, max: 10, message: 'half', at: T0 + 4100 }),
      ).toBe(true);
      expect(
        await store.addJobFile('a', 2, { name: 'log.txt', bytes: 3, contentType: 'text/plain' }),
      ).toBe(true);
      const done = await store.endAttempt(
        'a',
        2,
        {
          outcome: 'succeeded',
          output: { ok: [1, 2] },
          files: [{ name: 'out.png', bytes: 10, contentType: 'image/png' }],
        },
        T0 + 5000,
      );
      expect(done).toMatchObject({
        state: 'succeeded',
        output: { ok: [1, 2] },
        progress: { value: 5, max: 10, message: 'half', at: T0 + 4100 },
        attempts: [
          { attempt: 1, outcome: 'lost', error: 'gone' },
          { attempt: 2, outcome: 'succeeded', endedAt: T0 + 5000 },
        ],
      });
      expect(done?.files.map((f) => f.name).sort()).toEqual(['log.txt', 'out.png']);
      expect(await store.endAttempt('a', 2, { outcome: 'cancelled' }, T0 + 6000)).toBeNull();
      expect((await store.getJob('a'))?.state).toBe('succeeded');
    });

    it('retries after retryAt, then is dead with every attempt’s error', async () => {
      await store.submitJob(testJob('a', 'u1', { maxAttempts: 2 }));
      await store.submitJob(testJob('b', 'u1'));
      await lease();
      const failed = await store.endAttempt(
        'a',
        1,
        { outcome: 'failed', error: 'boom 1', retryable: true, retryAt: T0 + 10_000 },
        T0 + 2000,
      );
      expect(failed).toMatchObject({ state: 'failed', retryAt: T0 + 10_000, error: 'boom 1' });
      // before retryAt: b, not a
      expect((await lease({ now: T0 + 9_999 }))?.id).toBe('b');
      expect(await lease({ now: T0 + 9_999 })).toBeNull();
      const second = await lease({ now: T0 + 10_000 });
      expect(second).toMatchObject({ id: 'a', state: 'leased' });
      expect(second?.attempts).toHaveLength(2);
      const dead = await store.endAttempt(
        'a',
        2,
        { outcome: 'timeout', error: 'took too long', retryable: true, retryAt: T0 + 20_000 },
        T0 + 11_000,
      );
      expect(dead?.state).toBe('dead');
      expect(dead?.attempts.map((x) => [x.outcome, x.error])).toEqual([
        ['failed', 'boom 1'],
        ['timeout', 'took too long'],
      ]);
      expect(await lease({ now: T0 + 30_000 })).toBeNull();
      // a final error is dead at once
      await store.submitJob(testJob('c', 'u1'));
      await lease({ now: T0 + 30_000 });
      expect(
        (
          await store.endAttempt(
            'c',
            1,
            { outcome: 'failed', error: 'bad input', retryable: false, retryAt: T0 },
            T0 + 30_000,
          )
        )?.state,
      ).toBe('dead');
    });

    it('retries a dead job with fresh attempts, history kept', async () => {
      await store.submitJob(testJob('a', 'u1', { maxAttempts: 1 }));
      await lease();
      await store.endAttempt(
        'a',
        1,
        { outcome: 'failed', error: 'e1', retryable: true, retryAt: T0 },
        T0 + 2000,
      );
      expect((await store.getJob('a'))?.state).toBe('dead');
      const queued = await store.retryJob('a', T0 + 3000);
      expect(queued).toMatchObject({ state: 'queued', attempts: [{ attempt: 1, error: 'e1' }] });
      expect(queued?.error).toBeUndefined();
      const j = await lease({ now: T0 + 4000 });
      expect(j?.attempts.map((x) => x.attempt)).toEqual([1, 2]);
      // one fresh attempt: this failure is final again
      expect(
        (
          await store.endAttempt(
            'a',
            2,
            { outcome: 'failed', error: 'e2', retryable: true, retryAt: T0 },
            T0 + 5000,
          )
        )?.state,
      ).toBe('dead');
      // a running or succeeded job is not retried
      await store.submitJob(testJob('b', 'u1'));
      await lease({ now: T0 + 6000 });
      expect((await store.retryJob('b', T0 + 6000))?.state).toBe('leased');
      expect(await store.retryJob('nope', T0)).toBeNull();
    });

    it('cancels: queued at once, running by request, final ones unchanged', async () => {
      await store.submitJob(testJob('q', 'u1'));
      await store.submitJob(testJob('r', 'u1', { priority: 1 }));
      expect((await lease())?.id).toBe('r');
      const q = await store.cancelJob('q', T0 + 2000);
      expect(q?.state).toBe('cancelled');
      expect(await lease()).toBeNull();
      const r = await store.cancelJob('r', T0 + 2000);
      expect(r).toMatchObject({ state: 'leased', cancelRequested: true });
      // the worker reports a failure meanwhile: still cancelled, not retried
      const ended = await store.endAttempt(
        'r',
        1,
        { outcome: 'failed', error: 'killed', retryable: true, retryAt: T0 },
        T0 + 3000,
      );
      expect(ended?.state).toBe('cancelled');
      expect(ended?.cancelRequested).toBeUndefined();
      expect((await store.cancelJob('r', T0 + 4000))?.state).toBe('cancelled');
      expect(await store.cancelJob('nope', T0)).toBeNull();
      // a failed job waiting for its retry is cancelled at once
      await store.submitJob(testJob('f', 'u1'));
      await lease();
      await store.endAttempt(
        'f',
        1,
        { outcome: 'failed', error: 'x', retryable: true, retryAt: T0 + 50_000 },
        T0 + 2000,
      );
      expect((await store.cancelJob('f', T0 + 3000))?.state).toBe('cancelled');
      expect(await lease({ now: T0 + 60_000 })).toBeNull();
      // retried, a cancelled job queues again
      expect((await store.retryJob('q', T0 + 5000))?.state).toBe('queued');
      expect((await lease())?.id).toBe('q');
    });

    it('finds attempts past their deadline', async () => {
      await store.submitJob(testJob('a', 'u1', { timeoutS: 10 }));
      await store.submitJob(testJob('b', 'u1', { timeoutS: 100 }));
      await lease();
      await lease();
      expect(await store.overdueAttempts(T0 + 11_000, 10)).toEqual([]);
      expect(await store.overdueAttempts(T0 + 11_001, 10)).toEqual([{ id: 'a', attempt: 1 }]);
      expect(await store.overdueAttempts(T0 + 200_000, 1)).toHaveLength(1);
      expect(await store.overdueAttempts(T0 + 200_000, 10)).toHaveLength(2);
      await store.endAttempt(
        'a',
        1,
        { outcome: 'timeout', error: 'late', retryable: true, retryAt: T0 + 50_000 },
        T0 + 12_000,
      );
      expect(await store.overdueAttempts(T0 + 200_000, 10)).toEqual([{ id: 'b', attempt: 1 }]);
    });

    it('counts jobs by state, the queue by priority, the waiting groups', async () => {
      await store.submitJob(testJob('a', 'u1', { priority: 1 }));
      await store.submitJob(testJob('b', 'u1', { priority: 1 }));
      await store.submitJob(testJob('c', 'u2', { priority: 0, requirements: { gpu: 1 } }));
      await store.submitJob(testJob('d', 'u2', { priority: 0 }));
      await lease(); // a
      await lease(); // b
      await store.endAttempt(
        'b',
        1,
        { outcome: 'failed', error: 'x', retryable: true, retryAt: T0 + 99_000 },
        T0 + 2000,
      );
      await store.markRunning('a', 1, 'n1', T0 + 2000);
      expect(await store.countJobs()).toEqual({
        queued: 2,
        leased: 0,
        running: 1,
        succeeded: 0,
        failed: 1,
        dead: 0,
        cancelled: 0,
      });
      expect(await store.queueDepth()).toEqual([
        { priority: 1, queued: 0, retrying: 1 },
        { priority: 0, queued: 2, retrying: 0 },
      ]);
      const groups = await store.waitingGroups();
      expect(groups.map((g) => [g.submitterId, JSON.parse(g.key)[2], g.count]).sort()).toEqual([
        ['u2', 0, 1],
        ['u2', 1, 1],
      ]);
    });

    it('lists newest first, by page, filtered by submitter, state and type', async () => {
      for (let i = 0; i < 7; i++)
        await store.submitJob(
          testJob(`j${i}`, i % 2 ? 'u1' : 'u2', i === 3 ? { type: 'http' } : {}),
        );
      await lease(); // j0
      const p1 = await store.listJobs({ limit: 3 });
      expect(p1.jobs.map((j) => j.id)).toEqual(['j6', 'j5', 'j4']);
      const p2 = await store.listJobs({ limit: 3, before: p1.next });
      expect(p2.jobs.map((j) => j.id)).toEqual(['j3', 'j2', 'j1']);
      const p3 = await store.listJobs({ limit: 3, before: p2.next });
      expect(p3).toMatchObject({ jobs: [{ id: 'j0', state: 'leased' }] });
      expect(p3.next).toBeUndefined();
      expect(
        (await store.listJobs({ limit: 10, submitterId: 'u1' })).jobs.map((j) => j.id),
      ).toEqual(['j5', 'j3', 'j1']);
      expect((await store.listJobs({ limit: 10, state: 'leased' })).jobs.map((j) => j.id)).toEqual([
        'j0',
      ]);
      expect((await store.listJobs({ limit: 10, type: 'http' })).jobs.map((j) => j.id)).toEqual([
        'j3',
      ]);
      const u2 = await store.listJobs({ limit: 2, submitterId: 'u2', state: 'queued' });
      expect(u2.jobs.map((j) => j.id)).toEqual(['j6', 'j4']);
      const u2b = await store.listJobs({
        limit: 2,
        submitterId: 'u2',
        state: 'queued',
        before: u2.next,
      });
      expect(u2b.jobs.map((j) => j.id)).toEqual(['j2']);
      expect(u2b.next).toBeUndefined();
    });

    it('keeps job grants per node', async () => {
      await store.addJobGrant('n1', 'u2');
      await store.addJobGrant('n1', '*');
      await store.addJobGrant('n1', 'u1');
      await store.addJobGrant('n1', 'u1');
      await store.addJobGrant('n2', 'u3');
      expect(await store.listJobGrants('n1')).toEqual(['*', 'u1', 'u2']);
      await store.removeJobGrant('n1', 'u2');
      await store.removeJobGrant('n1', 'nobody');
      expect(await store.listJobGrants('n1')).toEqual(['*', 'u1']);
      expect(await store.listJobGrants('n3')).toEqual([]);
    });

    it('never hands one job out twice to workers leasing at once over several connections', async () => {
      const JOBS = 200;
      for (let i = 0; i < JOBS; i++)
        await store.submitJob(testJob(`j${i}`, `u${i % 5}`, { priority: i % 3 }));
      const others = await Promise.all([openAgain(), openAgain(), openAgain()]);
      try {
        const conns = [store, ...others];
        const got = await Promise.all(
          conns.flatMap((c, ci) =>
            Array.from({ length: 4 }, async (_, w) => {
              const mine: string[] = [];
              for (;;) {
                const j = await c.leaseJob({
                  nodeId: `n${ci}-${w}`,
                  submitters: '*',
                  profile: testProfile(),
                  now: T0 + 1000,
                  leaseMs: 30_000,
                  leaseTokenHash: 'h',
                });
                if (!j) return mine;
                expect(j.leaseNodeId).toBe(`n${ci}-${w}`);
                mine.push(j.id);
              }
            }),
          ),
        );
        const all = got.flat();
        expect(all).toHaveLength(JOBS);
        expect(new Set(all).size).toBe(JOBS);
        expect((await store.countJobs()).leased).toBe(JOBS);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
    });
  });
}
