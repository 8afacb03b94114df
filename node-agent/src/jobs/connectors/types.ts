/**
 * What every connector is to the worker: it says what it can do (the
 * `worker` message's connector entry, asking its backend where it has one)
 * and runs one job's parsed input under an AbortSignal, reporting progress.
 * It throws a JobError to fail the attempt (another error counts as
 * retryable); the worker turns the outcome into `job-result`/`job-failed`.
 */
import type { JobRequirements, JobType, WorkerConnector } from '@peerway/protocol';
import type { Logger } from 'pino';

/** A file a job made, uploaded with the lease token before its result. */
export interface JobFile {
  /** A plain name (letters, digits, "._-"; "/" between folders). */
  name: string;
  contentType: string;
  data: Buffer;
}

export interface JobOutcome {
  /** JSON; the worker sends it inline when small, else uploads it. */
  output: unknown;
  files?: JobFile[];
}

export interface JobProgressReport {
  value?: number;
  max?: number;
  message?: string;
}

/** What a connector gets with each job. */
export interface JobContext {
  id: string;
  attempt: number;
  requirements: JobRequirements;
  /** Fires on job-cancel, the job's timeout, a lost lease, or the agent stopping. */
  signal: AbortSignal;
  progress(p: JobProgressReport): void;
  log: Logger;
}

export interface Connector {
  readonly type: JobType;
  /** Its capabilities entry (services, models, images), asked of its backend each time. */
  describe(): Promise<WorkerConnector>;
  /** Runs one job; `input` has been parsed with the protocol's schema for `type`. */
  run(input: unknown, ctx: JobContext): Promise<JobOutcome>;
  /** Releases what it holds (sockets, engine clients). */
  close?(): Promise<void>;
}
