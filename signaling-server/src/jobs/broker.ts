/**
 * The jobs broker, one per server instance: the workers this instance
 * holds (agents that sent `worker`), leasing jobs to their free slots, the
 * agents' reports (heartbeats, start, progress, result, failure), and the
 * faults the server decides itself — a lease that lapsed (the attempt is
 * `lost`, the job goes back at its place), an attempt past its timeout.
 *
 * The store is the truth: every step is one atomic store call checked
 * against the attempt, so two instances (or a late report) never end one
 * attempt twice. A worker is woken when a job it could take appears (a
 * submit, a retry coming due, a lease freed), here or on another instance
 * (./signals.ts); a periodic pull of idle workers makes good a lost signal.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  FINAL_JOB_STATES,
  MAX_JOB_OUTPUT_BYTES,
  MAX_LEASE_INLINE_INPUT_BYTES,
  PeerwayError,
  backoffDelayMs,
  jsonBytes,
  parseRequirementKey,
  unmetRequirement,
  type AgentToServer,
  type JobEvent,
  type JobRequirements,
  type JobType,
  type ServerToAgent,
  type WorkerCapabilities,
  type WorkerProfile,
} from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import type { Metric, Registry } from 'prom-client';
import type { AttemptEnd, JobRecord, JobStore } from '../store/jobs';
import type { Store } from '../store/store';
import type { Logger } from '../logger';
import type { Clock } from '../ws/clock';
import type { JobFiles } from './files';
import { leasedJob, newLeaseToken } from './lease-token';
import { sweepFaults } from './faults';
import { RETENTION_SWEEP_MS, removeEndedJobs } from './retention';
import { unmetWarnings } from './warnings';
import { createJobMetrics, type JobMetrics } from './metrics';
import type { JobSignal, JobSignals, WorkerInfo } from './signals';
import { mayRunFor } from './views';

/** The default lease: it lapses this long after the worker's last heartbeat (`--job-lease`). */
export const DEFAULT_JOB_LEASE_MS = 30_000;
/** How often an instance tells the others of its workers and pulls for its idle ones. */
export const WORKER_BEAT_MS = 5000;
/** A remote worker not heard of for this long is gone (its instance died). */
const REMOTE_WORKER_STALE_MS = 3 * WORKER_BEAT_MS;
/** A worker's node record (owner, grants, resources) is read again after this long. */
const WORKER_REFRESH_MS = 5000;
/**
 * Idle workers woken for one waiting job. More than one, since a woken
 * worker may take a better job than this one (then the next one gets it).
 */
const WAKE_PER_JOB = 2;

/** The messages of the agent channel the broker takes. */
export type JobAgentMessage = Extract<
  AgentToServer,
  {
    type:
      | 'worker'
      | 'job-pull'
      | 'job-heartbeat'
      | 'job-started'
      | 'job-progress'
      | 'job-result'
      | 'job-failed';
  }
>;

/** An agent connection as the broker sees it. */
export interface WorkerLink {
  readonly nodeId: string;
  readonly shortId: string;
  readonly name: string;
  /** The node is draining (`drain`): it takes no new jobs and finishes what it holds. */
  readonly draining?: boolean;
  readonly peer: {
    send(m: ServerToAgent): void;
    readonly closed: boolean;
    readonly ws: { once(event: 'close', fn: () => void): unknown };
  };
}

/** What the store must do for the broker. */
export type BrokerStore = JobStore & Pick<Store, 'getNode'>;

export interface JobBrokerDeps {
  store: BrokerStore;
  clock: Clock;
  log: Logger;
  signals: JobSignals;
  files: JobFiles;
  leaseMs: number;
  /** Ended jobs are removed this long after they ended (0 or unset: kept). */
  retentionMs?: number;
  /** Where agents fetch an input too big to send inline. */
  publicUrl: string;
}

interface LocalWorker {
  link: WorkerLink;
  capabilities: WorkerCapabilities;
  profile: WorkerProfile;
  ownerId: string | null;
  grants: string[] | '*';
  /** Slots the agent said were free, less the leases sent since. */
  free: number;
  /** Attempts leased to it through this connection: job ID → attempt. */
  held: Map<string, number>;
  refreshedAt: number;
  pumping: boolean;
  again: boolean;
}

const isFinal = (s: JobRecord['state']) => FINAL_JOB_STATES.includes(s);
const currentAttempt = (j: JobRecord) => j.attempts.at(-1)?.attempt ?? 0;

export class JobBroker {
  readonly metrics: JobMetrics;
  private readonly workers = new Map<string, LocalWorker>();
  private readonly remote = new Map<string, { info: WorkerInfo; heardAt: number }>();
  private readonly events = new EventEmitter();
  /** Who submitted each job leased here: its events also go to the submitter's stream of all jobs. */
  private readonly submitterOf = new Map<string, string>();
  private readonly retryTimers = new Map<string, unknown>();
  private readonly keys = new Map<string, ReturnType<typeof parseRequirementKey>>();
  private readonly watched = new WeakSet<WorkerLink>();
  private sweepTimer: unknown = null;
  private beatTimer: unknown = null;
  private sweeping = false;
  /** When ended jobs past the retention were last looked for (./retention.ts). */
  private retainedAt = -Infinity;
  private wakeTurn = 0;

  constructor(private readonly deps: JobBrokerDeps) {
    this.metrics = createJobMetrics(deps.store);
    this.events.setMaxListeners(0);
  }

  get leaseMs(): number {
    return this.deps.leaseMs;
  }

  /** Puts the jobs figures on the server's /metrics. */
  registerMetrics(registry: Registry): void {
    for (const m of Object.values(this.metrics)) registry.registerMetric(m as Metric);
  }

  async start(): Promise<void> {
    await this.deps.signals.start((s) => this.onSignal(s));
    const { clock } = this.deps;
    // A lease lapses leaseMs after the last heartbeat: look a few times within that.
    const sweepMs = Math.max(50, Math.min(1000, Math.floor(this.deps.leaseMs / 4)));
    this.sweepTimer = clock.setInterval(() => void this.sweep(), sweepMs);
    this.beatTimer = clock.setInterval(() => this.beat(), WORKER_BEAT_MS);
  }

  async stop(): Promise<void> {
    const { clock } = this.deps;
    clock.clearInterval(this.sweepTimer);
    clock.clearInterval(this.beatTimer);
    for (const t of this.retryTimers.values()) clock.clearTimeout(t);
    this.retryTimers.clear();
    for (const w of this.workers.values())
      this.deps.signals.publish({ t: 'worker-gone', nodeId: w.link.nodeId });
    this.workers.clear();
    await this.deps.signals.close();
  }

  // -------------------------------------------------------------------------
  // the agent channel

  /** One job message of an authenticated agent. */
  async agentMessage(link: WorkerLink, m: JobAgentMessage): Promise<void> {
    const now = this.deps.clock.now();
    switch (m.type) {
      case 'worker':
        if (m.capabilities === null) return this.withdraw(link);
        return this.register(link, m.capabilities);
      case 'job-pull': {
        const w = this.workers.get(link.nodeId);
        if (!w || w.link !== link)
          throw new PeerwayError(
            'bad_message',
            'send `worker` with your capabilities before `job-pull`',
          );
        // Its resources may have been reported after `worker`.
        if (w.profile.resources === null) await this.refresh(w);
        w.free = Math.max(0, Math.min(m.free, w.capabilities.concurrency - w.held.size));
        this.pump(w);
        return;
      }
      case 'job-heartbeat':
        for (const l of m.leases) {
          const ok = await this.deps.store.renewLease(
            l.id,
            l.attempt,
            link.nodeId,
            now + this.deps.leaseMs,
          );
          if (!ok) {
            this.forget(link.nodeId, l.id, l.attempt);
            link.peer.send({
              type: 'job-cancel',
              id: l.id,
              attempt: l.attempt,
              reason: 'this lease is not yours any more (it lapsed, was cancelled or ended)',
            });
          }
        }
        return;
      case 'job-started':
        if (await this.deps.store.markRunning(m.id, m.attempt, link.nodeId, now))
          this.emit(
            m.id,
            { type: 'state', state: 'running', at: now, attempt: m.attempt, node: link.shortId },
            this.submitterOf.get(m.id),
          );
        else this.ignored(link, m);
        return;
      case 'job-progress': {
        if (!(await this.holds(link, m.id, m.attempt))) return this.ignored(link, m);
        const progress = {
          ...(m.value !== undefined ? { value: m.value } : {}),
          ...(m.max !== undefined ? { max: m.max } : {}),
          ...(m.message !== undefined ? { message: m.message } : {}),
          at: now,
        };
        if (await this.deps.store.setProgress(m.id, m.attempt, progress))
          this.emit(
            m.id,
            { type: 'progress', attempt: m.attempt, ...progress },
            this.submitterOf.get(m.id),
          );
        return;
      }
      case 'job-result':
        return this.result(link, m);
      case 'job-failed': {
        const job = await this.heldJob(link, m.id, m.attempt);
        if (!job) return this.ignored(link, m);
        await this.finish(job, m.attempt, {
          outcome: 'failed',
          error: m.error || 'the worker reported a failure without a message',
          retryable: m.retryable,
          retryAt: now + backoffDelayMs(job.backoff, m.attempt),
        });
        return;
      }
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { type: string }).type}`);
      }
    }
  }

  private async register(link: WorkerLink, capabilities: WorkerCapabilities): Promise<void> {
    const old = this.workers.get(link.nodeId);
    const w: LocalWorker = {
      link,
      capabilities,
      profile: { connectors: capabilities.connectors, resources: null },
      ownerId: null,
      grants: [],
      free: 0,
      held: old?.link === link ? old.held : new Map(),
      refreshedAt: 0,
      pumping: false,
      again: false,
    };
    await this.refresh(w);
    if (link.peer.closed) return;
    this.workers.set(link.nodeId, w);
    this.remote.delete(link.nodeId);
    if (!this.watched.has(link)) {
      this.watched.add(link);
      // The agent aborts what it runs when its connection drops, so the
      // attempts leased through this connection end now, as lost, and their
      // jobs go back at once (a lease the broker lost track of still lapses).
      link.peer.ws.once('close', () => {
        const gone = this.workers.get(link.nodeId);
        if (gone?.link !== link) return;
        this.workers.delete(link.nodeId);
        this.deps.signals.publish({ t: 'worker-gone', nodeId: link.nodeId });
        void this.loseAll(gone);
      });
    }
    this.deps.signals.publish({ t: 'worker', info: this.info(w) });
    this.deps.log.info(
      {
        node: link.shortId,
        concurrency: capabilities.concurrency,
        connectors: capabilities.connectors.map((c) => c.type),
      },
      'worker registered',
    );
  }

  private async loseAll(w: LocalWorker): Promise<void> {
    const now = this.deps.clock.now();
    for (const [id, attempt] of [...w.held]) {
      try {
        const job = await this.deps.store.getJob(id);
        if (job && job.leaseNodeId === w.link.nodeId)
          await this.finish(job, attempt, {
            outcome: 'lost',
            error: "the worker's connection closed while it held the job",
            retryable: true,
            retryAt: now,
          });
      } catch (err) {
        this.deps.log.warn({ err, job: id }, 'could not end the attempt of a closed worker');
      }
    }
    for (const id of w.held.keys()) this.submitterOf.delete(id);
    w.held.clear();
  }

  private withdraw(link: WorkerLink): void {
    if (this.workers.get(link.nodeId)?.link !== link) return;
    this.workers.delete(link.nodeId);
    this.deps.signals.publish({ t: 'worker-gone', nodeId: link.nodeId });
  }

  /** Reads the node's owner, job grants and resources again. */
  private async refresh(w: LocalWorker): Promise<void> {
    const node = await this.deps.store.getNode(w.link.nodeId);
    const grants = node?.ownerId ? await this.deps.store.listJobGrants(w.link.nodeId) : [];
    w.ownerId = node?.ownerId ?? null;
    w.grants = grants.includes('*') ? '*' : grants;
    w.profile = { connectors: w.capabilities.connectors, resources: node?.resources ?? null };
    w.refreshedAt = this.deps.clock.now();
  }

  private submittersOf(w: LocalWorker): string[] | '*' {
    if (w.ownerId === null) return [];
    return w.grants === '*' ? '*' : [w.ownerId, ...w.grants];
  }

  /** Leases jobs to the worker's free slots, one after another (never two loops for one worker). */
  private pump(w: LocalWorker): void {
    if (w.pumping) {
      w.again = true;
      return;
    }
    w.pumping = true;
    void (async () => {
      try {
        do {
          w.again = false;
          while (
            w.free > 0 &&
            !w.link.draining &&
            !w.link.peer.closed &&
            this.workers.get(w.link.nodeId) === w
          ) {
            if (this.deps.clock.now() - w.refreshedAt > WORKER_REFRESH_MS) await this.refresh(w);
            const submitters = this.submittersOf(w);
            if (submitters !== '*' && submitters.length === 0) break;
            if (!(await this.leaseOne(w, submitters))) break;
          }
        } while (w.again);
      } catch (err) {
        this.deps.log.warn({ err, node: w.link.shortId }, 'leasing failed');
      } finally {
        w.pumping = false;
      }
    })();
  }

  private async leaseOne(w: LocalWorker, submitters: string[] | '*'): Promise<boolean> {
    const { store, clock, leaseMs } = this.deps;
    const lease = newLeaseToken();
    const now = clock.now();
    const job = await store.leaseJob({
      nodeId: w.link.nodeId,
      submitters,
      profile: w.profile,
      now,
      leaseMs,
      leaseTokenHash: lease.hash,
    });
    if (!job) return false;
    const attempt = currentAttempt(job);
    if (w.link.peer.closed) {
      // Gone while the store leased it: the job goes back at once.
      await this.finish(job, attempt, {
        outcome: 'lost',
        error: 'the worker disconnected as the job was leased to it',
        retryable: true,
        retryAt: now,
      });
      return false;
    }
    w.free--;
    w.held.set(job.id, attempt);
    this.submitterOf.set(job.id, job.submitterId);
    const inline = jsonBytes(job.input) <= MAX_LEASE_INLINE_INPUT_BYTES;
    w.link.peer.send({
      type: 'job-lease',
      id: job.id,
      attempt,
      jobType: job.type,
      ...(inline
        ? { input: job.input }
        : { inputUrl: `${this.deps.publicUrl}/api/agent/jobs/${job.id}/input` }),
      requirements: job.requirements,
      timeoutS: job.timeoutS,
      leaseMs,
      leaseToken: lease.token,
    });
    const prev = job.attempts.at(-2);
    const waitedFrom = Math.max(job.createdAt, prev?.endedAt ?? 0);
    this.metrics.waitSeconds.observe(Math.max(0, now - waitedFrom) / 1000);
    this.emit(
      job.id,
      { type: 'state', state: 'leased', at: now, attempt, node: w.link.shortId },
      job.submitterId,
    );
    this.signalInfo(w);
    return true;
  }

  private async result(
    link: WorkerLink,
    m: Extract<JobAgentMessage, { type: 'job-result' }>,
  ): Promise<void> {
    const now = this.deps.clock.now();
    if (
      !m.outputUploaded &&
      jsonBytes(m.output) <= MAX_JOB_OUTPUT_BYTES &&
      this.leasedHere(link, m)
    ) {
      // This instance leased the attempt to this very connection: no need to
      // read the job first; the store's end step checks it is still the
      // current, live attempt (a lapsed lease has moved on).
      const done = await this.finish(
        { id: m.id, leaseNodeId: link.nodeId, attempts: [] },
        m.attempt,
        {
          outcome: 'succeeded',
          ...(m.output !== undefined ? { output: m.output } : {}),
        },
        false, // it said it uploaded none
      );
      if (!done) this.ignored(link, m);
      return;
    }
    const job = await this.heldJob(link, m.id, m.attempt);
    if (!job) return this.ignored(link, m);
    let output: unknown = m.output;
    let problem: string | null = null;
    if (m.outputUploaded) {
      const text = await this.deps.files.readOutput(job.id, m.attempt);
      if (text === null)
        problem = 'the worker said it uploaded the output, but no upload arrived for this attempt';
      else output = JSON.parse(text) as unknown;
    } else if (jsonBytes(output) > MAX_JOB_OUTPUT_BYTES) {
      problem = `the worker's output is over ${MAX_JOB_OUTPUT_BYTES} bytes of JSON: larger results go as files`;
    }
    if (problem !== null) {
      await this.finish(job, m.attempt, {
        outcome: 'failed',
        error: problem,
        retryable: true,
        retryAt: now + backoffDelayMs(job.backoff, m.attempt),
      });
      return;
    }
    await this.finish(job, m.attempt, {
      outcome: 'succeeded',
      ...(output !== undefined ? { output } : {}),
    });
  }

  /** The job if this node holds `attempt` of it now (leased or running), else null. */
  private async heldJob(link: WorkerLink, id: string, attempt: number): Promise<JobRecord | null> {
    const job = await this.deps.store.getJob(id);
    if (!job || (job.state !== 'leased' && job.state !== 'running')) return null;
    if (job.leaseNodeId !== link.nodeId || currentAttempt(job) !== attempt) return null;
    return job;
  }

  /** Whether this instance leased that attempt to this connection (and it has not ended here). */
  private leasedHere(link: WorkerLink, m: { id: string; attempt: number }): boolean {
    const w = this.workers.get(link.nodeId);
    return w?.link === link && w.held.get(m.id) === m.attempt;
  }

  private async holds(link: WorkerLink, id: string, attempt: number): Promise<boolean> {
    if (this.leasedHere(link, { id, attempt })) return true;
    return (await this.heldJob(link, id, attempt)) !== null;
  }

  /** A report about an attempt the node does not hold: it changes nothing. */
  private ignored(link: WorkerLink, m: { type: string; id: string; attempt: number }): void {
    this.deps.log.info(
      { node: link.shortId, type: m.type, job: m.id, attempt: m.attempt },
      'report for an attempt the node does not hold: ignored',
    );
  }

  private forget(nodeId: string, id: string, attempt: number): void {
    const w = this.workers.get(nodeId);
    if (w?.held.get(id) === attempt) {
      w.held.delete(id);
      this.submitterOf.delete(id);
      this.signalInfo(w);
    }
  }

  /**
   * Ends the attempt (if it is still the current one: else null and
   * nothing happens), counts it, tells the job's watchers, and wakes
   * workers when the job waits again.
   */
  async finish(
    job: Pick<JobRecord, 'id' | 'leaseNodeId' | 'attempts'>,
    attempt: number,
    end: AttemptEnd,
    /** Whether an uploaded output of the attempt may be on disk, to remove. */
    mayHaveOutputFile = true,
  ): Promise<JobRecord | null> {
    const now = this.deps.clock.now();
    const nodeId = job.leaseNodeId ?? job.attempts.find((a) => a.attempt === attempt)?.nodeId;
    const rec = await this.deps.store.endAttempt(job.id, attempt, end, now);
    if (!rec) return null;
    if (nodeId) this.forget(nodeId, job.id, attempt);
    const a = rec.attempts.find((x) => x.attempt === attempt);
    if (a) this.metrics.runSeconds.observe({ outcome: end.outcome }, (now - a.leasedAt) / 1000);
    if (end.outcome === 'succeeded') this.metrics.completed.inc({ type: rec.type });
    else if (end.outcome !== 'cancelled')
      this.metrics.failed.inc({ type: rec.type, outcome: end.outcome });
    if (rec.state === 'dead') this.metrics.dead.inc({ type: rec.type });
    if (mayHaveOutputFile && (end.outcome === 'succeeded' || end.outcome === 'failed'))
      void this.deps.files.dropOutput(rec.id, attempt).catch(() => {});
    this.emit(
      rec.id,
      {
        type: 'state',
        state: rec.state,
        at: now,
        attempt,
        ...(nodeId ? { node: shortIdOf(nodeId) } : {}),
        ...(end.outcome !== 'succeeded' && end.error ? { reason: end.error } : {}),
      },
      rec.submitterId,
    );
    this.waitsAgain(rec);
    return rec;
  }

  /** A job that waits again (queued now, or failed until its retryAt) gets a worker woken for it. */
  waitsAgain(rec: JobRecord): void {
    if (rec.state === 'queued') return this.announce(rec.submitterId, rec.key);
    if (rec.state !== 'failed') return;
    const { clock } = this.deps;
    const delay = Math.max(0, (rec.retryAt ?? 0) - clock.now());
    if (delay === 0) return this.announce(rec.submitterId, rec.key);
    const old = this.retryTimers.get(rec.id);
    if (old) clock.clearTimeout(old);
    this.retryTimers.set(
      rec.id,
      clock.setTimeout(() => {
        this.retryTimers.delete(rec.id);
        this.announce(rec.submitterId, rec.key);
      }, delay),
    );
  }

  /** Wakes the workers, here and on every instance, that could take a job of this group. */
  announce(submitterId: string, key: string): void {
    this.wake(submitterId, key);
    this.deps.signals.publish({ t: 'waiting', submitterId, key });
  }

  private wake(submitterId: string, key: string): void {
    let group = this.keys.get(key);
    if (!group) {
      try {
        group = parseRequirementKey(key);
      } catch {
        return;
      }
      if (this.keys.size > 10_000) this.keys.clear();
      this.keys.set(key, group);
    }
    // A few of the idle workers that could take it, not all of them: one
    // job woke every idle worker into a store call before (a herd with 100
    // workers). The start rotates, so the work spreads over them.
    const list = [...this.workers.values()];
    const start = list.length > 0 ? this.wakeTurn++ % list.length : 0;
    let woken = 0;
    for (let i = 0; i < list.length && woken < WAKE_PER_JOB; i++) {
      const w = list[(start + i) % list.length]!;
      if (w.free <= 0 || !mayRunFor(w, submitterId)) continue;
      if (unmetRequirement(group.type, group.requirements, w.profile, group.image) !== null)
        continue;
      this.pump(w);
      woken++;
    }
  }

  // -------------------------------------------------------------------------
  // the server's own decisions: lapsed leases, timeouts

  /** One pass over lapsed leases and overdue attempts (./faults.ts); never two at once. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.deps.clock.now();
      await sweepFaults(this.deps.store, now, this);
      const keep = this.deps.retentionMs ?? 0;
      if (keep > 0 && now - this.retainedAt >= RETENTION_SWEEP_MS) {
        this.retainedAt = now;
        await removeEndedJobs(this.deps.store, this.deps.files, now - keep, this.deps.log);
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'jobs sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  /** Tells the node's worker, here or on the instance holding it, to stop the attempt. */
  cancelOn(nodeId: string, id: string, attempt: number, reason: string): void {
    const w = this.workers.get(nodeId);
    if (w) w.link.peer.send({ type: 'job-cancel', id, attempt, reason });
    else this.deps.signals.publish({ t: 'cancel', nodeId, id, attempt, reason });
  }

  private beat(): void {
    const now = this.deps.clock.now();
    for (const [id, r] of this.remote)
      if (now - r.heardAt > REMOTE_WORKER_STALE_MS) this.remote.delete(id);
    for (const w of this.workers.values()) {
      this.deps.signals.publish({ t: 'worker', info: this.info(w) });
      // A signal lost between instances, or a retry that came due elsewhere.
      if (w.free > 0) this.pump(w);
    }
  }

  private signalInfo(w: LocalWorker): void {
    this.deps.signals.publish({ t: 'worker', info: this.info(w) });
  }

  private info(w: LocalWorker): WorkerInfo {
    return {
      nodeId: w.link.nodeId,
      shortId: w.link.shortId,
      name: w.link.name,
      ownerId: w.ownerId,
      grants: w.grants,
      concurrency: w.capabilities.concurrency,
      connectors: w.capabilities.connectors,
      resources: w.profile.resources,
      jobs: [...w.held.keys()],
      at: this.deps.clock.now(),
    };
  }

  /** Every worker online in the cluster of instances, as the others last said. */
  workerInfos(): WorkerInfo[] {
    const now = this.deps.clock.now();
    const list = [...this.workers.values()].map((w) => this.info(w));
    for (const r of this.remote.values())
      if (now - r.heardAt <= REMOTE_WORKER_STALE_MS && !this.workers.has(r.info.nodeId))
        list.push(r.info);
    return list;
  }

  private onSignal(s: JobSignal): void {
    switch (s.t) {
      case 'waiting':
        return this.wake(s.submitterId, s.key);
      case 'event':
        this.fire(s.id, s.event, s.submitterId);
        return;
      case 'cancel': {
        const w = this.workers.get(s.nodeId);
        w?.link.peer.send({ type: 'job-cancel', id: s.id, attempt: s.attempt, reason: s.reason });
        return;
      }
      case 'worker':
        if (!this.workers.has(s.info.nodeId))
          this.remote.set(s.info.nodeId, { info: s.info, heardAt: this.deps.clock.now() });
        return;
      case 'worker-gone':
        this.remote.delete(s.nodeId);
        return;
      case 'grants': {
        const w = this.workers.get(s.nodeId);
        if (w) void this.refreshAndPump(w);
        return;
      }
      default: {
        const never: never = s;
        this.deps.log.warn({ signal: (never as { t: string }).t }, 'unknown jobs signal');
      }
    }
  }

  private async refreshAndPump(w: LocalWorker): Promise<void> {
    try {
      await this.refresh(w);
      this.signalInfo(w);
      if (w.free > 0) this.pump(w);
    } catch (err) {
      this.deps.log.warn({ err }, 'could not read a worker node again');
    }
  }

  /** Who may use the node for jobs changed (an HTTP route): every instance reads it again. */
  grantsChanged(nodeId: string): void {
    const w = this.workers.get(nodeId);
    if (w) void this.refreshAndPump(w);
    this.deps.signals.publish({ t: 'grants', nodeId });
  }

  // -------------------------------------------------------------------------
  // events of a job, for SSE on any instance

  /** Tells the job's watchers here and on every instance (and its submitter's, when known). */
  emit(id: string, event: JobEvent, submitterId?: string): void {
    this.fire(id, event, submitterId);
    this.deps.signals.publish({
      t: 'event',
      id,
      event,
      ...(submitterId !== undefined ? { submitterId } : {}),
    });
  }

  private fire(id: string, event: JobEvent, submitterId: string | undefined): void {
    this.events.emit(id, event);
    // job IDs have no ':', so a submitter's channel never meets a job's
    if (submitterId !== undefined) this.events.emit(`by:${submitterId}`, id, event);
  }

  /** Calls `fn` with each event of the job from now on; returns the unsubscribe. */
  subscribe(id: string, fn: (e: JobEvent) => void): () => void {
    this.events.on(id, fn);
    return () => this.events.off(id, fn);
  }

  /** Calls `fn` with each event of every job this user submitted, from now on; returns the unsubscribe. */
  subscribeSubmitter(submitterId: string, fn: (id: string, e: JobEvent) => void): () => void {
    this.events.on(`by:${submitterId}`, fn);
    return () => this.events.off(`by:${submitterId}`, fn);
  }

  /** The job whose current attempt this lease token is for; a 401 otherwise. */
  leasedJob(id: string, token: string | undefined): Promise<JobRecord> {
    return leasedJob(this.deps.store, id, token);
  }

  /** What the submitter should know at submit: why no known worker can take it now. */
  unmetWarnings(
    submitterId: string,
    type: JobType,
    req: JobRequirements,
    image: string | undefined,
  ): string[] {
    return unmetWarnings(this.workerInfos(), submitterId, type, req, image);
  }
}

/** A new job's ID: 16 hex characters from 64 random bits. */
export function newJobId(): string {
  return randomBytes(8).toString('hex');
}

export { isFinal };
