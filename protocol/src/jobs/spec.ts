/**
 * A job as a user submits it (`POST /api/jobs`, `peerway jobs submit`):
 * what to run (its `type` names the connector), its input, what a worker
 * needs to have to take it, and how it is retried. Parsed once at the
 * edge with every default filled in; every problem carries its field's
 * path, as the deployment spec's do.
 */
import { z } from 'zod';
import { SERVICE_NAME_RE } from '../names';
import { LABEL_KEY_RE, LABEL_VALUE_RE, MAX_LABELS } from '../deploy/labels';
import { parseSize, SIZE_UNITS_HELP } from '../deploy/units';
import { formatSpecPath, type SpecError } from '../deploy/spec';
import { parseJobInput } from './inputs';

import { JOB_TYPES, type JobType } from './types';

export { JOB_TYPES, type JobType } from './types';

/**
 * A job's states. `failed` means "will retry" (its next attempt waits for
 * its backoff); `dead` means the attempts are spent (the dead letter).
 */
export const JOB_STATES = [
  'queued',
  'leased',
  'running',
  'succeeded',
  'failed',
  'dead',
  'cancelled',
] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States a job does not leave on its own (retry moves dead, cancelled back). */
export const FINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'dead', 'cancelled'];

/** JSON input, serialized; a larger one is a 413. */
export const MAX_JOB_INPUT_BYTES = 256 * 1024;
/** A result's inline output, serialized; larger outputs go as files. */
export const MAX_JOB_OUTPUT_BYTES = 1024 * 1024;
export const MAX_JOB_PRIORITY = 1_000_000;
export const MAX_JOB_TIMEOUT_S = 7 * 24 * 3600;
export const MAX_JOB_ATTEMPTS = 100;
export const MAX_IDEMPOTENCY_KEY_CHARS = 200;
export const MAX_JOB_MODELS = 32;
export const MAX_MODEL_NAME_CHARS = 256;
export const MAX_BACKOFF_MS = 24 * 3600 * 1000;
/**
 * The names a job's files are kept under (PUT /api/agent/jobs/:id/files/:name,
 * GET /api/jobs/:id/files/:name): one flat name of letters, digits and
 * "._-", up to 128, not starting with "." (the server's folder keeps its
 * own files under such names).
 */
export const JOB_FILE_NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export const JOB_DEFAULTS = {
  priority: 0,
  timeoutS: 600,
  maxAttempts: 3,
  backoff: { type: 'exponential' as const, delayMs: 1000, maxDelayMs: 5 * 60 * 1000 },
};

export const BACKOFF_TYPES = ['exponential', 'fixed'] as const;
export type BackoffType = (typeof BACKOFF_TYPES)[number];

export interface JobBackoff {
  type: BackoffType;
  /** The wait before the second attempt; exponential doubles it each time. */
  delayMs: number;
  /** No wait is longer than this. */
  maxDelayMs: number;
}

/**
 * What a worker must have to take the job. Every field is optional; an
 * empty object matches every worker of the job's type.
 */
export interface JobRequirements {
  /** One of the node's declared services (the `http` connector's target). */
  service?: string;
  /** At least this many GPUs. */
  gpu?: number;
  /** At least this much memory on the node, in bytes. */
  memory?: number;
  /** Models the worker's connector has loaded (ComfyUI checkpoints, say), every one of them. */
  models: string[];
  /** Node labels, every one equal. */
  labels: Record<string, string>;
}

/** A job after parsing, with every default filled in. */
export interface JobSubmission {
  type: JobType;
  /** JSON, checked against the type's input shape (./inputs.ts). */
  input: unknown;
  requirements: JobRequirements;
  /** Higher runs first; FIFO within one priority. */
  priority: number;
  idempotencyKey?: string;
  /** Enforced by the worker and by the server, per attempt. */
  timeoutS: number;
  maxAttempts: number;
  backoff: JobBackoff;
}

export type JobSubmissionResult =
  { ok: true; job: JobSubmission } | { ok: false; errors: SpecError[] };

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const modelName = z
  .string()
  .min(1)
  .max(MAX_MODEL_NAME_CHARS)
  .regex(/^[^\u0000-\u001f]+$/, 'must not contain control characters');

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const r = parseSize(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: `${r.message} (${SIZE_UNITS_HELP})` });
    return z.NEVER;
  }
  return r.value;
});

export const JobRequirementsSchema = z.strictObject({
  service: z.string().regex(SERVICE_NAME_RE, 'must be a service name (a-z, 0-9, "-")').optional(),
  gpu: int(0, 64).optional(),
  memory: size.optional(),
  models: z.array(modelName).max(MAX_JOB_MODELS).default([]),
  labels: z
    .record(
      z.string().regex(LABEL_KEY_RE, 'label keys: letters, digits, ".", "_", "/", "-"'),
      z.string().regex(LABEL_VALUE_RE, 'label values: letters, digits, ".", "_", "-"'),
    )
    .refine((l) => Object.keys(l).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
    .default({}),
});

export const JobBackoffSchema = z
  .strictObject({
    type: z.enum(BACKOFF_TYPES).default(JOB_DEFAULTS.backoff.type),
    delayMs: int(0, MAX_BACKOFF_MS).default(JOB_DEFAULTS.backoff.delayMs),
    maxDelayMs: int(0, MAX_BACKOFF_MS).default(JOB_DEFAULTS.backoff.maxDelayMs),
  })
  .refine((b) => b.maxDelayMs >= b.delayMs, {
    message: 'maxDelayMs must not be shorter than delayMs',
    path: ['maxDelayMs'],
  });

export const JobSubmissionSchema = z.strictObject({
  type: z.enum(JOB_TYPES, { error: `type must be one of ${JOB_TYPES.join(', ')}` }),
  input: z.unknown().optional(),
  requirements: JobRequirementsSchema.prefault({}),
  priority: int(-MAX_JOB_PRIORITY, MAX_JOB_PRIORITY).default(JOB_DEFAULTS.priority),
  idempotencyKey: z.string().min(1).max(MAX_IDEMPOTENCY_KEY_CHARS).optional(),
  timeoutS: int(1, MAX_JOB_TIMEOUT_S).default(JOB_DEFAULTS.timeoutS),
  maxAttempts: int(1, MAX_JOB_ATTEMPTS).default(JOB_DEFAULTS.maxAttempts),
  backoff: JobBackoffSchema.prefault({}),
});

/** Bytes of `value` as JSON (UTF-8); Infinity when it is not JSON. */
export function jsonBytes(value: unknown): number {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    return Infinity;
  }
  return s === undefined ? 0 : new TextEncoder().encode(s).length;
}

/**
 * Validates a submission and fills in its defaults; checks the input
 * against its type's shape. Every problem is reported at once with its
 * path. The input's size is the caller's first check (a 413, not a 400):
 * see MAX_JOB_INPUT_BYTES.
 */
export function parseJobSubmission(raw: unknown): JobSubmissionResult {
  const r = JobSubmissionSchema.safeParse(raw);
  if (!r.success) {
    return {
      ok: false,
      errors: r.error.issues.map((i) => ({ path: formatSpecPath(i.path), message: i.message })),
    };
  }
  const input = parseJobInput(r.data.type, r.data.input);
  if (!input.ok) return { ok: false, errors: input.errors };
  if (r.data.type === 'http' && r.data.requirements.service === undefined) {
    return {
      ok: false,
      errors: [
        {
          path: 'requirements.service',
          message:
            "an http job names the service it calls (one of the worker node's declared services)",
        },
      ],
    };
  }
  return { ok: true, job: { ...r.data, input: input.input } as JobSubmission };
}

/** The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed. */
export function backoffDelayMs(b: JobBackoff, attempt: number): number {
  const d = b.type === 'fixed' ? b.delayMs : b.delayMs * 2 ** Math.max(0, attempt - 1);
  return Math.min(b.maxDelayMs, d);
}
