/**
 * The node as a worker (`peerway-agent run --jobs`): it tells the server
 * what it can do (`worker`, from its connectors) and how many slots are
 * free (`job-pull`), then runs each lease it gets in its connector:
 *
 * - the lease is checked again here (the type is one of its connectors,
 *   `unmetRequirement` over its own picture, the input parsed with the
 *   protocol's schema): a bad lease is a `job-failed` with the reason, never
 *   a crash;
 * - `job-started`, progress, heartbeats at a third of the lease time, then
 *   `job-result` (files first, each with the lease token; the output inline
 *   when small, else uploaded) or `job-failed`;
 * - `job-cancel` aborts the connector; so does the job's own timeout.
 *
 * Reconnects: the server ends a worker's leases when its socket closes (the
 * attempt is `lost` and the job goes back to the queue), so whatever this
 * worker still runs then is work nobody will take a report of, and may
 * already run elsewhere. It is aborted at once, silently; after the next
 * welcome the worker announces itself again with every slot free.
 */
import {
  MAX_JOB_OUTPUT_BYTES,
  MAX_RESULT_INLINE_OUTPUT_BYTES,
  jsonBytes,
  parseJobInput,
  unmetRequirement,
  type AgentToServer,
  type NodeResources,
  type ServerToAgent,
  type WorkerConnector,
} from '@peerway/protocol';
import type { Logger } from 'pino';
import { JobError, abortReason } from './errors';
import type { LeaseHttp } from './lease-http';
import {
  JOB_FILE_NAME_RE,
  type Connector,
  type JobOutcome,
  type JobProgressReport,
} from './connectors/types';

export type JobLease = Extract<ServerToAgent, { type: 'job-lease' }>;
export type JobServerMessage = Extract<ServerToAgent, { type: 'job-lease' | 'job-cancel' }>;

/** Progress reports of one job closer together than this are dropped (the last step never is). */
export const PROGRESS_MIN_INTERVAL_MS = 200;
/** A heartbeat is never further apart than this, whatever the lease time. */
export const MAX_HEARTBEAT_MS = 30_000;

export interface WorkerOptions {
  connectors: readonly Connector[];
  /** Jobs run at once. */
  concurrency: number;
  send(m: AgentToServer): void;
  http: LeaseHttp;
  /** The node's last resources report (GPUs, memory, labels), for the lease check. */
  resources: () => NodeResources | null;
  log: Logger;
  now?: () => number;
}

interface Running {
  id: string;
  attempt: number;
  token: string;
  leaseMs: number;
  abort: AbortController;
  /** Set when the server ended the attempt (cancel, a dropped connection): nothing is reported. */
  silent: boolean;
  timeout: NodeJS.Timeout | null;
  lastProgressAt: number;
}

export class Worker {
  private readonly running = new Map<string, Running>();
  private readonly byType: Map<string, Connector>;
  /** What `describe()` said last: the lease check uses it. */
  private described: WorkerConnector[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private heartbeatMs = 0;
  private online = false;
  private stopped = false;

  constructor(private readonly o: WorkerOptions) {
    this.byType = new Map(o.connectors.map((c) => [c.type, c]));
  }

  /** Job IDs this worker runs now. */
  get jobs(): string[] {
    return [...this.running.keys()];
  }

  get free(): number {
    return Math.max(0, this.o.concurrency - this.running.size);
  }

  /** The server welcomed the node: capabilities, then the free slots. */
  async connected(): Promise<void> {
    if (this.stopped) return;
    this.online = true;
    await this.announce();
    this.pull();
  }

  /** The server connection dropped: its leases are gone (see the module comment). */
  disconnected(): void {
    this.online = false;
    for (const r of this.running.values()) {
      r.silent = true;
      r.abort.abort('the server connection dropped: the server has ended this lease');
    }
  }

  /** Stops taking jobs and aborts the running ones. */
  stop(): void {
    this.stopped = true;
    if (this.online) this.o.send({ type: 'worker', capabilities: null });
    for (const r of this.running.values()) r.abort.abort('the agent is stopping');
    this.setHeartbeat();
  }

  /** A `job-lease` or `job-cancel` from the server. */
  message(m: JobServerMessage): void {
    if (m.type === 'job-cancel') {
      const r = this.running.get(m.id);
      if (!r || r.attempt !== m.attempt) return;
      r.silent = true;
      r.abort.abort(`cancelled by the server: ${m.reason}`);
      return;
    }
    void this.lease(m);
  }

  private async announce(): Promise<void> {
    const described: WorkerConnector[] = [];
    for (const c of this.o.connectors) {
      try {
        described.push(await c.describe());
      } catch (err) {
        // still a connector (its backend may come back): it just reports nothing it has
        this.o.log.warn(
          { connector: c.type, err: (err as Error).message },
          'connector could not say what it has',
        );
        described.push({ type: c.type, services: [], models: [], images: [] });
      }
    }
    this.described = described;
    if (!this.online || this.stopped) return;
    this.o.send({
      type: 'worker',
      capabilities: { concurrency: this.o.concurrency, connectors: described },
    });
  }

  private pull(): void {
    if (this.online && !this.stopped) this.o.send({ type: 'job-pull', free: this.free });
  }

  private failed(m: { id: string; attempt: number }, error: string, retryable: boolean): void {
    this.o.log.info({ job: m.id, attempt: m.attempt, retryable, error }, 'job failed');
    this.o.send({
      type: 'job-failed',
      id: m.id,
      attempt: m.attempt,
      error: short(error),
      retryable,
    });
  }

  private async lease(m: JobLease): Promise<void> {
    const log = this.o.log.child({ job: m.id, attempt: m.attempt, jobType: m.jobType });
    const held = this.running.get(m.id);
    if (held) {
      // the same attempt twice is a repeat; another attempt of a job held here is the server's mix-up
      if (held.attempt !== m.attempt)
        this.failed(m, `this node still runs attempt ${held.attempt} of this job`, true);
      return;
    }
    if (this.stopped) return this.failed(m, 'the agent is stopping', true);
    if (this.running.size >= this.o.concurrency)
      return this.failed(m, `this node has no free slot (${this.o.concurrency} jobs run)`, true);
    const connector = this.byType.get(m.jobType);
    if (!connector)
      return this.failed(
        m,
        `this node has no ${m.jobType} connector (it runs ${[...this.byType.keys()].join(', ')})`,
        false,
      );
    const r: Running = {
      id: m.id,
      attempt: m.attempt,
      token: m.leaseToken,
      leaseMs: m.leaseMs,
      abort: new AbortController(),
      silent: false,
      timeout: null,
      lastProgressAt: 0,
    };
    this.running.set(m.id, r);
    this.setHeartbeat();
    try {
      const outcome = await this.execute(m, r, connector, log);
      if (r.silent) return;
      await this.report(m, r, outcome);
    } catch (err) {
      if (r.silent) {
        log.info({ reason: abortReason(r.abort.signal) }, 'job stopped');
        return;
      }
      const e = err instanceof JobError ? err : null;
      const why = r.abort.signal.aborted
        ? abortReason(r.abort.signal)
        : (err as Error).message || String(err);
      this.failed(m, why, e ? e.retryable : true);
    } finally {
      if (r.timeout) clearTimeout(r.timeout);
      this.running.delete(m.id);
      this.setHeartbeat();
      // a slot is free again
      this.pull();
    }
  }

  /** Checks the lease, fetches and parses its input, runs it. */
  private async execute(
    m: JobLease,
    r: Running,
    connector: Connector,
    log: Logger,
  ): Promise<JobOutcome> {
    let input: unknown = m.input;
    if (input === undefined) input = await this.o.http.input(m.id, m.leaseToken);
    const parsed = parseJobInput(m.jobType, input);
    if (!parsed.ok)
      throw new JobError(
        `its input does not fit a ${m.jobType} job: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        false,
      );
    const image = m.jobType === 'container' ? (parsed.input as { image: string }).image : undefined;
    const unmet = unmetRequirement(
      m.jobType,
      m.requirements,
      { connectors: this.described, resources: this.o.resources() },
      image,
    );
    if (unmet) {
      // another worker may meet it; this one tells the server what it has now
      void this.announce();
      throw new JobError(`this node ${unmet}`, true);
    }
    if (r.abort.signal.aborted) throw new JobError(abortReason(r.abort.signal), true);
    r.timeout = setTimeout(
      () => r.abort.abort(`timed out after ${m.timeoutS} s (the job's timeoutS)`),
      m.timeoutS * 1000,
    );
    this.o.send({ type: 'job-started', id: m.id, attempt: m.attempt });
    log.info('job started');
    return connector.run(parsed.input, {
      id: m.id,
      attempt: m.attempt,
      requirements: m.requirements,
      signal: r.abort.signal,
      progress: (p) => this.progress(r, p),
      log,
    });
  }

  private progress(r: Running, p: JobProgressReport): void {
    if (r.silent || r.abort.signal.aborted || !this.running.has(r.id)) return;
    const now = (this.o.now ?? Date.now)();
    const last = p.value !== undefined && p.max !== undefined && p.value >= p.max;
    if (!last && now - r.lastProgressAt < PROGRESS_MIN_INTERVAL_MS) return;
    r.lastProgressAt = now;
    this.o.send({
      type: 'job-progress',
      id: r.id,
      attempt: r.attempt,
      ...(p.value !== undefined && Number.isFinite(p.value) ? { value: p.value } : {}),
      ...(p.max !== undefined && Number.isFinite(p.max) ? { max: p.max } : {}),
      ...(p.message !== undefined ? { message: short(p.message) } : {}),
    });
  }

  /** Files first, then the output: inline when small, uploaded when not, refused when too big. */
  private async report(m: JobLease, r: Running, outcome: JobOutcome): Promise<void> {
    const bytes = jsonBytes(outcome.output);
    if (bytes === Infinity)
      throw new JobError('its connector returned output that is not JSON', false);
    if (bytes > MAX_JOB_OUTPUT_BYTES)
      throw new JobError(
        `its output is ${bytes} bytes of JSON, more than the ${MAX_JOB_OUTPUT_BYTES} allowed`,
        false,
      );
    const names = new Set<string>();
    for (const f of outcome.files ?? []) {
      if (!JOB_FILE_NAME_RE.test(f.name) || names.has(f.name))
        throw new JobError(
          `its connector named a file "${f.name.slice(0, 140)}", which is no upload name`,
          false,
        );
      names.add(f.name);
    }
    for (const f of outcome.files ?? []) {
      if (r.abort.signal.aborted) throw new JobError(abortReason(r.abort.signal), true);
      await this.o.http.file(m.id, r.token, f);
    }
    if (r.abort.signal.aborted) throw new JobError(abortReason(r.abort.signal), true);
    if (bytes <= MAX_RESULT_INLINE_OUTPUT_BYTES) {
      this.o.send({
        type: 'job-result',
        id: m.id,
        attempt: m.attempt,
        output: outcome.output,
        outputUploaded: false,
      });
    } else {
      await this.o.http.output(m.id, r.token, outcome.output);
      this.o.send({ type: 'job-result', id: m.id, attempt: m.attempt, outputUploaded: true });
    }
    this.o.log.info(
      { job: m.id, attempt: m.attempt, files: outcome.files?.length ?? 0 },
      'job succeeded',
    );
  }

  /** One heartbeat for every lease, at a third of the shortest lease time. */
  private setHeartbeat(): void {
    const live = [...this.running.values()].filter((r) => !r.silent);
    const ms =
      live.length === 0
        ? 0
        : Math.min(MAX_HEARTBEAT_MS, ...live.map((r) => Math.max(1, Math.floor(r.leaseMs / 3))));
    if (ms === this.heartbeatMs) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.heartbeatMs = ms;
    if (ms === 0) return;
    this.heartbeat = setInterval(() => {
      const leases = [...this.running.values()]
        .filter((x) => !x.silent)
        .map((x) => ({ id: x.id, attempt: x.attempt }));
      if (leases.length && this.online) this.o.send({ type: 'job-heartbeat', leases });
    }, ms);
    this.heartbeat.unref();
  }
}

/** Within the protocol's shortText (500 characters). */
const short = (s: string) => (s.length > 500 ? `${s.slice(0, 497)}...` : s);
