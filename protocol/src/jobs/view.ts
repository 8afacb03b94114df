/**
 * A job as the API answers it (`GET /api/jobs/:id`, the list, the CLI's
 * `--json`, the dashboard) and the events `GET /api/jobs/:id/events`
 * streams. Plain types: the server builds them, clients read them.
 */
import { formatBytes } from '../deploy/units';
import type { JobRequirements, JobState, JobType, JobBackoff } from './spec';

export const ATTEMPT_OUTCOMES = ['succeeded', 'failed', 'lost', 'timeout', 'cancelled'] as const;
/** How an attempt ended: `lost` is a lease that expired (the worker died or went silent). */
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export interface JobAttemptView {
  /** 1-based. */
  attempt: number;
  /** The worker node's short ID. */
  node: string;
  leasedAt: number;
  startedAt?: number;
  endedAt?: number;
  outcome?: AttemptOutcome;
  error?: string;
}

export interface JobFileView {
  name: string;
  bytes: number;
  contentType: string;
  /** `/api/jobs/<id>/files/<name>` on the server. */
  url: string;
}

export interface JobProgress {
  value?: number;
  max?: number;
  message?: string;
  at: number;
}

export interface JobView {
  id: string;
  type: JobType;
  state: JobState;
  priority: number;
  requirements: JobRequirements;
  input: unknown;
  /** Inline output of a succeeded job (JSON, at most MAX_JOB_OUTPUT_BYTES). */
  output?: unknown;
  files: JobFileView[];
  /** The last attempt's error, for failed and dead jobs. */
  error?: string;
  attempts: JobAttemptView[];
  /** The latest attempt's node (short ID). */
  node?: string;
  maxAttempts: number;
  timeoutS: number;
  backoff: JobBackoff;
  idempotencyKey?: string;
  progress?: JobProgress;
  /** When a `failed` job's next attempt may start. */
  retryAt?: number;
  createdAt: number;
  updatedAt: number;
  /** At submit: why no known worker could take it now (the job still waits). */
  warnings?: string[];
}

/** One Server-Sent Event of a job (`event: state` / `event: progress`). */
export type JobEvent =
  | {
      type: 'state';
      state: JobState;
      at: number;
      attempt?: number;
      node?: string;
      reason?: string;
    }
  | ({ type: 'progress'; attempt: number } & JobProgress);

/** A worker as `GET /api/workers` shows it. */
export interface WorkerView {
  node: string;
  name: string;
  online: boolean;
  concurrency: number;
  running: number;
  connectors: { type: JobType; services: string[]; models: string[]; images: string[] }[];
  labels: Record<string, string>;
  gpus: number;
  memoryBytes: number;
  /** IDs of the jobs it holds now. */
  jobs: string[];
  /** Whose jobs it may run besides its owner's: users it is shared with, or everyone. */
  pool: 'owner' | 'shared' | 'public';
}

/**
 * A job's requirements in words, one part each: `service=render`,
 * `gpu>=1`, `memory>=8 GiB`, `model=sdxl`, `region=home` (`atLeast` is
 * the sign: the dashboard prints ≥). Empty for a job any worker takes.
 */
export function requirementParts(r: JobRequirements, atLeast = '>='): string[] {
  return [
    r.service !== undefined ? `service=${r.service}` : '',
    r.gpu ? `gpu${atLeast}${r.gpu}` : '',
    r.memory !== undefined ? `memory${atLeast}${formatBytes(r.memory)}` : '',
    ...(r.models ?? []).map((m) => `model=${m}`),
    ...Object.entries(r.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ].filter(Boolean);
}

/** Progress in words: `3/10 sampling`, `40%`, or the message alone (empty with neither). */
export function progressText(p: { value?: number; max?: number; message?: string }): string {
  const amount =
    p.value === undefined
      ? ''
      : p.max
        ? `${p.value}/${p.max}`
        : p.value <= 1
          ? `${Math.round(p.value * 100)}%`
          : String(p.value);
  return [amount, p.message ?? ''].filter(Boolean).join(' ');
}
