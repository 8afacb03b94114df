/**
 * The node's side of the cluster: it converges the containers this node
 * runs on the set of replicas the server wants (`allocations`, always the
 * whole set). Listed and new: run it (a Replica: pull, start, health);
 * listed and there: keep it; not listed: stop and remove it, including
 * containers an earlier run of the agent left (found by the node's
 * `peerway.node` label; those still listed are adopted, not started
 * again). Each spec is parsed again here and refused when it fails, when
 * the owner did not turn deployments on, or when its image comes from a
 * registry the owner did not allow.
 *
 * Every change of a replica's state goes to the server (`allocation-status`),
 * and the whole set after each `allocations` and each reconnect. A replica
 * that exits stays exited: restarting it is the server's decision (it sends
 * a set with a new replica). A deployment with a healthy replica here is
 * served from it (`serve`); when none is healthy, it is withdrawn.
 */
import type { Logger } from 'pino';
import {
  parseDeploymentSpec,
  type AllocationAssignment,
  type AllocationReport,
  type DeploymentSpec,
} from '@peerway/protocol';
import {
  DEFAULT_HEALTH,
  Replica,
  RuntimeError,
  assertRegistryAllowed,
  parseImageRef,
  type ContainerRecord,
  type ContainerRuntime,
  type HealthSpec,
  type ReplicaStatus,
  type RunSpec,
} from '../runtime';
import type { DeployedService } from '../agent';
import type { DeploySettings } from './settings';

/** What a refused replica is told when the owner did not turn deployments on. */
export const DEPLOYMENTS_OFF =
  'deployments are not enabled on this node (peerway-agent run --deployments)';
/** Longest reason sent (the protocol's short text). */
const MAX_REASON_CHARS = 500;
/** Seconds a container gets between SIGTERM and SIGKILL when the agent stops it. */
export const STOP_TIMEOUT_S = 5;

export interface ReconcilerOptions {
  /** null: no container engine here (`runtimeProblem` says why). */
  runtime: ContainerRuntime | null;
  runtimeProblem?: string;
  /** This node's short ID: the `peerway.node` label of its containers. */
  node: string;
  settings: Pick<DeploySettings, 'enabled' | 'registries'>;
  /** More labels on every container (e.g. `peerway.test=<run id>`). */
  extraLabels?: Record<string, string>;
  /** Sends replica states to the server. */
  report: (reports: AllocationReport[]) => void;
  /** The deployments this node serves now (each from one healthy replica). */
  serve: (services: DeployedService[]) => void;
  /** The health check for a spec (default: the spec's path, interval and timeout). */
  health?: (spec: DeploymentSpec) => HealthSpec;
  stopTimeoutS?: number;
  log: Logger;
}

interface Entry {
  assignment: AllocationAssignment;
  /** The spec as this node parsed it; null when it failed. */
  spec: DeploymentSpec | null;
  replica: Replica | null;
  /** Resolves once the replica's start (or adoption) has ended. */
  started: Promise<unknown>;
  report: AllocationReport;
}

/** The health check a spec asks for. */
export function healthOf(spec: DeploymentSpec): HealthSpec {
  return {
    path: spec.health.path,
    intervalMs: Math.round(spec.health.intervalS * 1000),
    timeoutMs: Math.round(spec.health.timeoutS * 1000),
    startPeriodMs: DEFAULT_HEALTH.startPeriodMs,
    unhealthyAfter: DEFAULT_HEALTH.unhealthyAfter,
    startIntervalMs: DEFAULT_HEALTH.startIntervalMs,
  };
}

/** The parts of a spec its container is made from: a change there needs a new container. */
function containerKey(spec: DeploymentSpec): string {
  const { image, port, command, args, env, resources } = spec;
  return JSON.stringify({ image, port, command, args, env, resources });
}

const clip = (s: string) =>
  s.length > MAX_REASON_CHARS ? s.slice(0, MAX_REASON_CHARS - 1) + '…' : s;

export class Reconciler {
  private readonly entries = new Map<string, Entry>();
  /** Containers found at start, by allocation, not yet adopted or removed. */
  private found: Map<string, ContainerRecord> | null = null;
  private queue: Promise<void> = Promise.resolve();
  /** Stops under way (an entry left the set), so `settled()` can wait for them. */
  private readonly retiring = new Set<Promise<void>>();
  private served = '[]';
  private closed = false;

  constructor(private readonly o: ReconcilerOptions) {}

  /** Takes the server's whole desired set; changes run one set after another. */
  apply(list: readonly AllocationAssignment[]): Promise<void> {
    const run = this.queue.then(() => this.applyNow(list));
    this.queue = run.catch((err: unknown) =>
      this.o.log.error({ err }, 'could not apply the allocations'),
    );
    return this.queue;
  }

  /** Every replica's state (after a reconnect). */
  reportAll(): void {
    const all = [...this.entries.values()].map((e) => e.report);
    if (all.length) this.o.report(all);
  }

  /** The states as last reported, by allocation. */
  states(): Map<string, AllocationReport> {
    return new Map([...this.entries].map(([id, e]) => [id, e.report]));
  }

  /** Resolves when every set given so far is applied and every stop it caused is done. */
  async settled(): Promise<void> {
    await this.queue;
    await Promise.all([...this.retiring]);
  }

  /**
   * Stops watching the containers but leaves them running: the agent is
   * going away, and its next run adopts them.
   */
  detach(): void {
    this.closed = true;
    for (const e of this.entries.values()) e.replica?.detach();
  }

  private async applyNow(list: readonly AllocationAssignment[]): Promise<void> {
    if (this.closed) return;
    const { runtime } = this.o;
    if (runtime && !this.found) {
      const records = await runtime.list({ node: this.o.node });
      this.found = new Map(records.flatMap((r) => (r.peerway ? [[r.peerway.allocation, r]] : [])));
      if (records.length)
        this.o.log.info({ containers: records.length }, 'found containers of an earlier run');
    }
    const wanted = new Set<string>();
    for (const a of list) {
      if (wanted.has(a.id)) continue;
      wanted.add(a.id);
      await this.place(a);
    }
    for (const [id, e] of this.entries) {
      if (wanted.has(id)) continue;
      this.entries.delete(id);
      this.retire(e, 'no longer in the set');
    }
    // containers of earlier runs the server no longer wants
    for (const [id, record] of this.found ?? []) {
      this.found?.delete(id);
      this.track(this.removeContainer(record));
    }
    this.reportAll();
    this.updateServing();
  }

  /** Makes one listed replica true: refuse it, keep it, replace it or start it. */
  private async place(a: AllocationAssignment): Promise<void> {
    const existing = this.entries.get(a.id);
    const parsed = parseDeploymentSpec(a.spec);
    let refusal: string | null = null;
    let spec: DeploymentSpec | null = null;
    if (!parsed.ok) {
      refusal = `the spec does not pass this node's check: ${parsed.errors
        .map((e) => `${e.path || '(spec)'}: ${e.message}`)
        .join('; ')}`;
    } else {
      spec = parsed.spec;
      refusal = this.refusal(a, spec);
    }
    if (refusal !== null || spec === null) {
      if (existing?.replica) this.retire(existing, 'refused');
      const report: AllocationReport = { id: a.id, state: 'failed', reason: clip(refusal ?? '') };
      if (existing?.report.state !== 'failed' || existing.report.reason !== report.reason)
        this.o.log.warn({ allocation: a.id, reason: report.reason }, 'replica refused');
      this.entries.set(a.id, {
        assignment: a,
        spec,
        replica: null,
        started: Promise.resolve(),
        report,
      });
      return;
    }
    if (existing?.replica && existing.spec && containerKey(existing.spec) === containerKey(spec)) {
      // the same container: only what the agent itself uses (access) may change
      existing.assignment = a;
      existing.spec = spec;
      return;
    }
    if (existing?.replica) this.retire(existing, 'its spec changed');
    this.run(a, spec);
  }

  /** Why this node does not run a replica, or null when it may. */
  private refusal(a: AllocationAssignment, spec: DeploymentSpec): string | null {
    if (!this.o.settings.enabled) return DEPLOYMENTS_OFF;
    if (spec.name !== a.deployment)
      return `the allocation is for deployment "${a.deployment}" but its spec is named "${spec.name}"`;
    if (!this.o.runtime)
      return `no container runtime on this node: ${this.o.runtimeProblem ?? 'none was found'}`;
    if (spec.resources.gpu > 0)
      return `the spec asks for ${spec.resources.gpu} GPU(s); this agent does not give containers GPUs`;
    try {
      assertRegistryAllowed(parseImageRef(spec.image), this.o.settings.registries);
    } catch (err) {
      if (err instanceof RuntimeError) return err.message;
      throw err;
    }
    return null;
  }

  private runSpec(a: AllocationAssignment, spec: DeploymentSpec): RunSpec {
    return {
      image: spec.image,
      port: spec.port,
      labels: { node: this.o.node, deployment: spec.name, allocation: a.id },
      ...(this.o.extraLabels ? { extraLabels: this.o.extraLabels } : {}),
      ...(spec.command ? { entrypoint: spec.command } : {}),
      ...(spec.args ? { command: spec.args } : {}),
      env: spec.env,
      memoryBytes: spec.resources.memoryBytes,
      cpu: spec.resources.cpuMillis / 1000,
      stopTimeoutS: this.o.stopTimeoutS ?? STOP_TIMEOUT_S,
    };
  }

  /** Starts (or adopts, when an earlier run left its container) one replica. */
  private run(a: AllocationAssignment, spec: DeploymentSpec): void {
    const runtime = this.o.runtime!;
    const entry: Entry = {
      assignment: a,
      spec,
      replica: null,
      started: Promise.resolve(),
      report: { id: a.id, state: 'pending', reason: 'waiting to start' },
    };
    const replica = new Replica({
      runtime,
      spec: this.runSpec(a, spec),
      health: (this.o.health ?? healthOf)(spec),
      log: this.o.log.child({ deployment: spec.name }),
      onStatus: (st) => this.changed(entry, replica, st),
    });
    entry.replica = replica;
    this.entries.set(a.id, entry);
    const left = this.found?.get(a.id);
    this.found?.delete(a.id);
    entry.started = left ? replica.adopt(left) : replica.start();
  }

  private changed(entry: Entry, replica: Replica, st: ReplicaStatus): void {
    if (this.entries.get(entry.assignment.id) !== entry || entry.replica !== replica) return;
    entry.report = {
      id: entry.assignment.id,
      state: st.state,
      reason: clip(st.reason),
      ...(st.exitCode !== undefined ? { exitCode: st.exitCode } : {}),
    };
    this.o.report([entry.report]);
    this.updateServing();
  }

  /** Stops and removes a replica that left the set (after its start has ended). */
  private retire(e: Entry, why: string): void {
    const replica = e.replica;
    e.replica = null;
    if (!replica) return;
    this.o.log.info({ allocation: e.assignment.id, why }, 'stopping replica');
    this.track(
      e.started.then(async () => {
        try {
          await replica.stop();
        } catch (err) {
          this.o.log.warn(
            { allocation: e.assignment.id, err: (err as Error).message },
            'could not stop the replica',
          );
        }
      }),
    );
    this.updateServing();
  }

  private async removeContainer(record: ContainerRecord): Promise<void> {
    this.o.log.info(
      { container: record.id.slice(0, 12), allocation: record.peerway?.allocation },
      'removing a container the server no longer wants',
    );
    try {
      await this.o.runtime?.remove(record.id);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not remove the container');
    }
  }

  private track(p: Promise<void>): void {
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  /** Serves each deployment with a healthy replica here, from the first such replica. */
  private updateServing(): void {
    const byName = new Map<string, DeployedService>();
    for (const e of this.entries.values()) {
      const r = e.replica;
      const port = r?.container?.hostPort;
      if (!e.spec || !r || r.status.state !== 'running' || !port || byName.has(e.spec.name))
        continue;
      byName.set(e.spec.name, { name: e.spec.name, port, public: e.spec.access === 'public' });
    }
    const list = [...byName.values()].sort((x, y) => x.name.localeCompare(y.name));
    const text = JSON.stringify(list);
    if (text === this.served) return;
    this.served = text;
    this.o.serve(list);
  }
}
