/**
 * The jobs part of the store: the queue, its leases and the job history,
 * behind one interface both stores implement (SQLite in one transaction per
 * step; Redis with sorted sets and Lua scripts, so matching and leasing is
 * one atomic step across server instances). One contract suite runs
 * against both (`jobs-contract.ts`).
 *
 * Order: the highest priority first, the oldest (`seq`) within one. A job
 * whose lease is lost goes back at its original place (its `seq` is kept).
 * Matching never scans the waiting jobs: they are grouped by submitter and
 * requirement key (`requirementKey` in @peerway/protocol), and a pull looks
 * at the head of each group this worker may take.
 */
import type {
  AttemptOutcome,
  JobBackoff,
  JobProgress,
  JobRequirements,
  JobState,
  JobType,
  WorkerProfile,
} from '@peerway/protocol';

export interface JobAttemptRecord {
  attempt: number;
  /** The worker node's ID (the API shows its short ID). */
  nodeId: string;
  leasedAt: number;
  startedAt?: number;
  endedAt?: number;
  outcome?: AttemptOutcome;
  error?: string;
}

export interface JobFileRecord {
  name: string;
  bytes: number;
  contentType: string;
}

export interface JobRecord {
  id: string;
  submitterId: string;
  type: JobType;
  input: unknown;
  requirements: JobRequirements;
  /** A container job's image (part of what a worker must allow). */
  image?: string;
  /** requirementKey(type, requirements, image): the group it waits in. */
  key: string;
  priority: number;
  /** Submission order, unique and increasing per store. */
  seq: number;
  idempotencyKey?: string;
  timeoutS: number;
  maxAttempts: number;
  backoff: JobBackoff;
  state: JobState;
  /** Attempts started so far (the current one while leased or running). */
  attempts: JobAttemptRecord[];
  /** While leased/running: the node holding it, and when the lease lapses. */
  leaseNodeId?: string;
  leaseExpiresAt?: number;
  /** SHA-256 (hex) of the current attempt's lease token. */
  leaseTokenHash?: string;
  /** When the attempt must end (leased/running): its start + timeoutS. */
  deadlineAt?: number;
  output?: unknown;
  files: JobFileRecord[];
  error?: string;
  progress?: JobProgress;
  /** A `failed` job waits until then for its next attempt. */
  retryAt?: number;
  cancelRequested?: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface NewJob {
  id: string;
  submitterId: string;
  type: JobType;
  input: unknown;
  requirements: JobRequirements;
  image?: string;
  priority: number;
  idempotencyKey?: string;
  timeoutS: number;
  maxAttempts: number;
  backoff: JobBackoff;
  now: number;
}

/** What a pull may take: whose jobs, what the worker can do. */
export interface LeaseRequest {
  nodeId: string;
  /** Submitters whose jobs the node may run; '*' for every one (a public pool). */
  submitters: readonly string[] | '*';
  profile: WorkerProfile;
  now: number;
  leaseMs: number;
  leaseTokenHash: string;
}

export interface JobListFilter {
  submitterId?: string;
  state?: JobState;
  type?: JobType;
  /** Newest first; `before` is the `seq` to continue below (the last page's `next`). */
  before?: number;
  limit: number;
}

/** How a running attempt ends, as the worker or the server decides. */
export type AttemptEnd =
  | { outcome: 'succeeded'; output?: unknown; files?: JobFileRecord[] }
  /** failed/lost/timeout: retried after `retryAt` if attempts remain, else dead. */
  | { outcome: 'failed' | 'lost' | 'timeout'; error: string; retryable: boolean; retryAt: number }
  | { outcome: 'cancelled'; error?: string };

export interface JobStore {
  /**
   * Atomic: queues the job, or with an idempotency key already used by this
   * submitter returns that job (`created: false`) and queues nothing.
   */
  submitJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  getJob(id: string): Promise<JobRecord | null>;
  listJobs(filter: JobListFilter): Promise<{ jobs: JobRecord[]; next?: number }>;
  /**
   * Atomic across instances: takes the best waiting job this worker meets
   * (highest priority, then oldest) among the submitters it may serve,
   * promotes `failed` jobs whose retryAt has come first, starts attempt
   * n + 1 leased to `nodeId`. Null when none waits.
   */
  leaseJob(req: LeaseRequest): Promise<JobRecord | null>;
  /** Extends the lease of this attempt if it is still the node's; false otherwise. */
  renewLease(id: string, attempt: number, nodeId: string, until: number): Promise<boolean>;
  /** leased → running (the connector began); false when not this node's current attempt. */
  markRunning(id: string, attempt: number, nodeId: string, now: number): Promise<boolean>;
  setProgress(id: string, attempt: number, progress: JobProgress): Promise<boolean>;
  /**
   * Atomic: ends the current attempt (only if it is `attempt`, else null and
   * nothing changes): succeeded; failed/lost/timeout → `failed` with retryAt
   * while attempts remain (and `retryable`), else `dead`; cancelled.
   * A lost attempt does not count against maxAttempts' backoff order: the
   * job waits at its original place.
   */
  endAttempt(id: string, attempt: number, end: AttemptEnd, now: number): Promise<JobRecord | null>;
  /**
   * Queued/failed → cancelled at once; leased/running → `cancelRequested`
   * (the broker tells the worker, then ends the attempt as cancelled).
   * Null when the job does not exist; final jobs are returned unchanged.
   */
  cancelJob(id: string, now: number): Promise<JobRecord | null>;
  /** Dead/cancelled/failed → queued with fresh attempts (history kept); else unchanged. */
  retryJob(id: string, now: number): Promise<JobRecord | null>;
  /** Leases that lapsed before `now` (lost workers), at most `limit`; the caller ends them as lost. */
  expiredLeases(now: number, limit: number): Promise<{ id: string; attempt: number }[]>;
  /**
   * Removes final jobs (succeeded, dead, cancelled) last changed before
   * `before`, at most `limit`, with their attempts, file list and
   * idempotency key (a later submit with that key makes a new job); their
   * IDs, so the caller removes their files.
   */
  removeEndedJobs(before: number, limit: number): Promise<string[]>;
  /** Attempts whose deadline passed (timeouts), at most `limit`. */
  overdueAttempts(now: number, limit: number): Promise<{ id: string; attempt: number }[]>;
  /** Waiting jobs (queued, and failed awaiting retry) by priority. */
  queueDepth(): Promise<{ priority: number; queued: number; retrying: number }[]>;
  /** Counts by state (for the dashboard and /metrics). */
  countJobs(): Promise<Record<JobState, number>>;
  /** Keys and submitters of non-empty groups (what a submit-time "no worker could" check needs). */
  waitingGroups(): Promise<{ submitterId: string; key: string; count: number }[]>;
  /** Files a job's attempt uploaded are kept with the job (bytes live on disk, see jobs/files). */
  addJobFile(id: string, attempt: number, file: JobFileRecord): Promise<boolean>;

  // job grants: a node's owner lets another user's jobs run on the node; '*' puts it in the public pool
  addJobGrant(nodeId: string, userId: string | '*'): Promise<void>;
  removeJobGrant(nodeId: string, userId: string | '*'): Promise<void>;
  listJobGrants(nodeId: string): Promise<string[]>;
}
