/**
 * The jobs figures on `/metrics`: what was submitted, completed, failed
 * (attempts) and went to the dead letter, by type; the queue's depth by
 * priority (read from the store at scrape time, so it is the cluster's
 * whole queue on every instance); and how long jobs waited for a worker
 * and ran.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { JobStore } from '../store/jobs';

const SECONDS_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800,
];

/** The figures, on no registry yet (the broker registers them on the server's). */
export function createJobMetrics(store: Pick<JobStore, 'queueDepth'>) {
  return {
    submitted: new Counter({
      name: 'peerway_jobs_submitted_total',
      help: 'Jobs accepted (an idempotent resubmit counts once), by type',
      labelNames: ['type'] as const,
      registers: [],
    }),
    completed: new Counter({
      name: 'peerway_jobs_completed_total',
      help: 'Jobs that succeeded, by type',
      labelNames: ['type'] as const,
      registers: [],
    }),
    failed: new Counter({
      name: 'peerway_jobs_failed_total',
      help: 'Attempts that ended without success, by type and outcome (failed, lost, timeout)',
      labelNames: ['type', 'outcome'] as const,
      registers: [],
    }),
    dead: new Counter({
      name: 'peerway_jobs_dead_total',
      help: 'Jobs that spent their attempts (the dead letter), by type',
      labelNames: ['type'] as const,
      registers: [],
    }),
    queueDepth: new Gauge({
      name: 'peerway_jobs_queue_depth',
      help: 'Jobs waiting for a worker, by priority and whether they wait for a retry',
      labelNames: ['priority', 'waiting'] as const,
      registers: [],
      async collect() {
        this.reset();
        for (const d of await store.queueDepth()) {
          this.set({ priority: String(d.priority), waiting: 'queued' }, d.queued);
          this.set({ priority: String(d.priority), waiting: 'retry' }, d.retrying);
        }
      },
    }),
    waitSeconds: new Histogram({
      name: 'peerway_job_wait_seconds',
      help: 'From submit (or the last attempt ending) to the lease, per attempt',
      buckets: SECONDS_BUCKETS,
      registers: [],
    }),
    runSeconds: new Histogram({
      name: 'peerway_job_run_seconds',
      help: 'From lease to the end of an attempt, by outcome',
      labelNames: ['outcome'] as const,
      buckets: SECONDS_BUCKETS,
      registers: [],
    }),
  };
}

export type JobMetrics = ReturnType<typeof createJobMetrics>;
