/**
 * What the jobs API does for a signed-in user: submit, show, list, cancel,
 * retry. Only the submitter (or an admin) sees or acts on a job; anyone
 * else is told it does not exist.
 */
import { PeerwayError, type JobState, type JobSubmission, type JobType } from '@peerway/protocol';
import type { JobRecord, JobStore } from '../store/jobs';
import type { User } from '../store/store';
import type { Clock } from '../ws/clock';
import { isFinal, newJobId, type JobBroker } from './broker';

export interface SubmitResult {
  job: JobRecord;
  created: boolean;
  warnings: string[];
}

export class JobsApi {
  constructor(
    private readonly store: JobStore,
    private readonly broker: JobBroker,
    private readonly clock: Clock,
  ) {}

  /**
   * Queues the job (or returns the one its idempotency key made before).
   * With `strict`, a job no known worker could take now is refused: null
   * and the warnings.
   */
  async submit(
    user: User,
    sub: JobSubmission,
    strict: boolean,
  ): Promise<SubmitResult | { refused: string[] }> {
    const image =
      sub.type === 'container' ? (sub.input as { image?: string } | undefined)?.image : undefined;
    const warnings = this.broker.unmetWarnings(user.id, sub.type, sub.requirements, image);
    if (strict && warnings.length > 0) return { refused: warnings };
    const now = this.clock.now();
    const { job, created } = await this.store.submitJob({
      id: newJobId(),
      submitterId: user.id,
      type: sub.type,
      input: sub.input,
      requirements: sub.requirements,
      ...(image !== undefined ? { image } : {}),
      priority: sub.priority,
      ...(sub.idempotencyKey !== undefined ? { idempotencyKey: sub.idempotencyKey } : {}),
      timeoutS: sub.timeoutS,
      maxAttempts: sub.maxAttempts,
      backoff: sub.backoff,
      now,
    });
    if (created) {
      this.broker.metrics.submitted.inc({ type: job.type });
      this.broker.emit(job.id, { type: 'state', state: job.state, at: now }, job.submitterId);
      this.broker.announce(job.submitterId, job.key);
    }
    return { job, created, warnings };
  }

  /** The job, if this user may see it; a 404 otherwise. */
  async get(user: User, id: string): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job || (job.submitterId !== user.id && !user.isAdmin))
      throw new PeerwayError('not_found', `you have no job ${id}`);
    return job;
  }

  /** The user's jobs, newest first (an admin's `all`: everyone's). */
  list(
    user: User,
    q: { state?: JobState; type?: JobType; before?: number; limit: number; all: boolean },
  ) {
    return this.store.listJobs({
      ...(q.all && user.isAdmin ? {} : { submitterId: user.id }),
      ...(q.state ? { state: q.state } : {}),
      ...(q.type ? { type: q.type } : {}),
      ...(q.before !== undefined ? { before: q.before } : {}),
      limit: q.limit,
    });
  }

  /**
   * Cancels the job: a waiting one at once; a leased or running one is
   * stopped on its worker (`job-cancel`) and its attempt ends `cancelled`.
   * A final job is answered as it is.
   */
  async cancel(user: User, id: string): Promise<JobRecord> {
    const before = await this.get(user, id);
    if (isFinal(before.state)) return before;
    const now = this.clock.now();
    const rec = await this.store.cancelJob(id, now);
    if (!rec) throw new PeerwayError('not_found', `you have no job ${id}`);
    if (rec.state === 'cancelled') {
      this.broker.emit(
        id,
        { type: 'state', state: 'cancelled', at: now, reason: 'cancelled' },
        before.submitterId,
      );
      return rec;
    }
    if (rec.state === 'leased' || rec.state === 'running') {
      const attempt = rec.attempts.at(-1)!.attempt;
      if (rec.leaseNodeId)
        this.broker.cancelOn(rec.leaseNodeId, id, attempt, 'cancelled by its submitter');
      const ended = await this.broker.finish(rec, attempt, {
        outcome: 'cancelled',
        error: 'cancelled by its submitter',
      });
      if (ended) return ended;
    }
    return (await this.store.getJob(id)) ?? rec;
  }

  /** Queues a dead, cancelled or failed job again with fresh attempts; others are answered as they are. */
  async retry(user: User, id: string): Promise<JobRecord> {
    const before = await this.get(user, id);
    const now = this.clock.now();
    const rec = await this.store.retryJob(id, now);
    if (!rec) throw new PeerwayError('not_found', `you have no job ${id}`);
    if (rec.state === 'queued' && before.state !== 'queued') {
      this.broker.emit(
        id,
        { type: 'state', state: 'queued', at: now, reason: 'retried' },
        before.submitterId,
      );
      this.broker.announce(rec.submitterId, rec.key);
    }
    return rec;
  }
}
