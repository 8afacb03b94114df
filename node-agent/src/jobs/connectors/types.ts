/**
 * What every connector is to the worker: it says what it can do (the
 * `worker` message's connector entry, asking its backend where it has one)
 * and runs one job's parsed input under an AbortSignal, reporting progress.
 * It throws a JobError to fail the attempt (another error counts as
 * retryable); the worker turns the outcome into `job-result`/`job-failed`.
 */
import type { JobRequirements, JobType, WorkerConnector } from '@peerway/protocol';
import type { Logger } from 'pino';

/** The names the server keeps a job's files under (the protocol's rule). */
export { JOB_FILE_NAME_RE } from '@peerway/protocol';

/**
 * Flat, distinct upload names for these paths ("deep/er/x.txt" →
 * "deep__er__x.txt"; other characters → "_"; a clash or an over-long name
 * gets a number).
 */
export function uploadNames(paths: readonly string[]): string[] {
  const used = new Set<string>();
  return paths.map((p, i) => {
    let base = p
      .split('/')
      .filter(Boolean)
      .map((seg) => seg.replace(/[^A-Za-z0-9._-]+/g, '_'))
      .join('__')
      .replace(/^\./, '_');
    if (!base) base = `file-${i + 1}`;
    let name = base.slice(0, 128);
    for (let n = 2; used.has(name); n++) name = `${base.slice(0, 120)}-${n}`;
    used.add(name);
    return name;
  });
}

/** A file a job made, uploaded with the lease token before its result. */
export interface JobFile {
  /** Its upload name (see uploadNames). */
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
