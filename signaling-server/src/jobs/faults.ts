/**
 * The faults the server decides itself, on every instance (the store's
 * atomic end of an attempt lets only one of them act): a lease that lapsed
 * (the worker went silent) ends its attempt `lost` and the job waits again
 * at its place; an attempt past its timeout ends `timeout` and retries after
 * its backoff. Either way the worker, if it is still there, is told to stop.
 */
import { backoffDelayMs } from '@peerway/protocol';
import type { AttemptEnd, JobRecord, JobStore } from '../store/jobs';

/** Leases and overdue attempts handled per pass. */
export const SWEEP_BATCH = 100;

/** What a pass needs of the broker. */
export interface FaultActions {
  finish(job: JobRecord, attempt: number, end: AttemptEnd): Promise<JobRecord | null>;
  cancelOn(nodeId: string, id: string, attempt: number, reason: string): void;
}

/** One pass over lapsed leases and overdue attempts as of `now`. */
export async function sweepFaults(
  store: Pick<JobStore, 'expiredLeases' | 'overdueAttempts' | 'getJob'>,
  now: number,
  act: FaultActions,
): Promise<void> {
  for (const x of await store.expiredLeases(now, SWEEP_BATCH)) {
    const job = await store.getJob(x.id);
    if (!job) continue;
    const rec = await act.finish(job, x.attempt, {
      outcome: 'lost',
      error: 'the lease lapsed: the worker went silent or its connection closed',
      retryable: true,
      retryAt: now,
    });
    if (rec && job.leaseNodeId)
      act.cancelOn(job.leaseNodeId, job.id, x.attempt, 'the lease lapsed');
  }
  for (const x of await store.overdueAttempts(now, SWEEP_BATCH)) {
    const job = await store.getJob(x.id);
    if (!job) continue;
    const rec = await act.finish(job, x.attempt, {
      outcome: 'timeout',
      error: `the attempt ran past its timeout of ${job.timeoutS} s`,
      retryable: true,
      retryAt: now + backoffDelayMs(job.backoff, x.attempt),
    });
    if (rec && job.leaseNodeId)
      act.cancelOn(job.leaseNodeId, job.id, x.attempt, `timed out after ${job.timeoutS} s`);
  }
}
