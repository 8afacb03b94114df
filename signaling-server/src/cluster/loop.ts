/**
 * The reconciler loop, one per server instance: a pass over every
 * deployment on a timer (a quarter of the reschedule grace), on a kick
 * (an agent's report, an API change) and when a restart's backoff or a
 * node's grace falls due. Each deployment is brought to its spec through
 * `reconcile` (pure) and one atomic `putAllocations` made at the
 * deployment's version: several instances may run their loops at once,
 * since a plan made from a stale read fails with PlanConflictError and is
 * made again from a fresh one. What it knows of presence (when this
 * instance saw each node go offline) is its own; everything else it reads
 * from the store.
 */
import type { DeploymentSpec } from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import {
  MAX_DEPLOYMENT_EVENTS,
  PlanConflictError,
  type AllocationRecord,
  type DeploymentRecord,
  type NewDeploymentEvent,
  type NodeRecord,
  type Store,
} from '../store/store';
import type { Logger } from '../logger';
import type { Clock } from '../ws/clock';
import { reconcile, type NodeState, type Reconciliation } from './reconcile';
import { exitCodeIn, failureCounts, isDown, restartedEvent } from './restart';

/** The default grace before a lost node's replicas are placed elsewhere (`--reschedule-after`). */
export const DEFAULT_RESCHEDULE_AFTER_MS = 10_000;
/** Attempts at applying one deployment's plan when other writers keep getting ahead. */
export const MAX_PLAN_ATTEMPTS = 5;
/** The loop's period: a quarter of the grace, within these bounds. */
const MIN_TICK_MS = 100;
const MAX_TICK_MS = 5000;

export interface DeploymentsDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  /** Online anywhere in the cluster of server instances. */
  isOnline(nodeId: string): boolean;
  /** Its agent is draining (wherever it is connected): its replicas move off it. */
  isDraining?(nodeId: string): boolean;
  rescheduleAfterMs: number;
  /** Sends each node its (new) desired set, wherever it is connected. */
  deliver(nodeIds: Iterable<string>): void;
  /** Who may serve the service changed (a replica started or stopped running, access changed). */
  servingChanged(name: string): void;
  /** The service's URL. */
  serviceUrl(name: string): string;
  /** After each pass of the loop (a resync of the nodes this instance holds). */
  afterPass?(): void;
}

export class ReconcileLoop {
  /** Exit codes as agents reported them (the store keeps them only in the reason's words). */
  readonly exitCodes = new Map<string, number>();
  /** When this instance saw each node go offline. */
  private readonly offlineSince = new Map<string, number>();
  /** No node counts as lost before the grace has passed since this instance started. */
  private readonly startedAt: number;
  private timer: unknown = null;
  private wakeTimer: unknown = null;
  private wakeAt = Infinity;
  private passing: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: DeploymentsDeps) {
    this.startedAt = deps.clock.now();
  }

  start(): void {
    this.stopped = false;
    if (this.timer !== null) this.deps.clock.clearInterval(this.timer);
    const every = Math.min(
      MAX_TICK_MS,
      Math.max(MIN_TICK_MS, Math.floor(this.deps.rescheduleAfterMs / 4)),
    );
    this.timer = this.deps.clock.setInterval(() => this.kick(), every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.deps.clock.clearInterval(this.timer);
    if (this.wakeTimer !== null) this.deps.clock.clearTimeout(this.wakeTimer);
    this.timer = this.wakeTimer = null;
    this.wakeAt = Infinity;
    await this.passing;
  }

  /** Runs a pass of the loop soon (one at a time; a kick during a pass runs another after it). */
  kick(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = (async () => {
      do {
        this.again = false;
        await this.pass().catch((err: unknown) =>
          this.deps.log.warn({ err }, 'deployment reconciliation failed'),
        );
      } while (this.again && !this.stopped);
      this.passing = null;
    })();
  }

  /** Resolves when the pass under way (if any) is over: for tests and shutdown. */
  async settled(): Promise<void> {
    while (this.passing) await this.passing;
  }

  /** A pass at `at` (ms since the epoch), if none is due before. */
  private wake(at: number): void {
    if (this.stopped || at >= this.wakeAt) return;
    if (this.wakeTimer !== null) this.deps.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.deps.clock.setTimeout(
      () => {
        this.wakeTimer = null;
        this.wakeAt = Infinity;
        this.kick();
      },
      Math.max(0, at - this.deps.clock.now()),
    );
  }

  private async pass(): Promise<void> {
    for (const d of await this.deps.store.listDeployments()) {
      if (this.stopped) return;
      await this.syncAccess(d.name).catch((err: unknown) =>
        this.deps.log.warn({ err, deployment: d.name }, 'could not set a service access'),
      );
      await this.reconcileDeployment(d.name).catch((err: unknown) =>
        this.deps.log.warn({ err, deployment: d.name }, 'could not reconcile a deployment'),
      );
    }
    this.deps.afterPass?.();
  }

  /**
   * Gives the deployment's service the access its spec says. `apply` writes
   * the spec and then the access, two writes: a server killed between them
   * leaves the service with the old access (a spec turned private still
   * served publicly), which the next pass of any instance mends here.
   *
   * An `apply` may run at the same time (writing the spec P, then the
   * access A): the service is read before the spec, and the spec read
   * again after the write, so the last write is always the newest spec's
   * access — A comes after this write, or P came before the second read.
   */
  private async syncAccess(name: string): Promise<void> {
    const { store } = this.deps;
    const svc = await store.getService(name);
    const d = await store.getDeployment(name);
    if (!svc || !d || svc.ownerId !== d.ownerId || svc.access === d.spec.access) return;
    await store.setServiceAccess(name, d.spec.access);
    const now = await store.getDeployment(name);
    if (now && now.version !== d.version) await store.setServiceAccess(name, now.spec.access);
    this.deps.log.info(
      { deployment: name, from: svc.access, to: (now ?? d).spec.access },
      "service access set to the deployment's",
    );
    this.deps.servingChanged(name);
  }

  // ---------------------------------------------------------------------------
  // presence

  nodeOnline(nodeId: string): void {
    this.offlineSince.delete(nodeId);
  }

  /** The node went offline (here, or on the instance that held it): it is lost after the grace. */
  nodeOffline(nodeId: string): void {
    const now = this.deps.clock.now();
    this.offlineSince.set(nodeId, now);
    this.wake(now + this.deps.rescheduleAfterMs + 1);
  }

  private nodeState(n: NodeRecord, now: number): NodeState {
    const online = this.deps.isOnline(n.id);
    const offlineFrom = Math.max(n.lastSeen, this.offlineSince.get(n.id) ?? 0, this.startedAt);
    const lost = !online && now - offlineFrom > this.deps.rescheduleAfterMs;
    if (!online && !lost) this.wake(offlineFrom + this.deps.rescheduleAfterMs + 1);
    return {
      id: n.id,
      shortId: n.shortId,
      ownerId: n.ownerId,
      resources: n.resources,
      online,
      lost,
      draining: online && (this.deps.isDraining?.(n.id) ?? false),
    };
  }

  private async nodeStates(now: number): Promise<NodeState[]> {
    return (await this.deps.store.listAllNodes()).map((n) => this.nodeState(n, now));
  }

  // ---------------------------------------------------------------------------
  // reconciliation

  /** One deployment's plan from what the store holds now (nothing written). */
  async decide(
    d: DeploymentRecord,
    spec: DeploymentSpec,
    replace: ReadonlySet<string>,
  ): Promise<Reconciliation> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const [nodes, allocations, grants] = await Promise.all([
      this.nodeStates(now),
      store.listAllocations(),
      store.deployableNodes(d.ownerId),
    ]);
    const own = allocations.filter((a) => a.deployment === d.name && a.desired === 'run');
    // the failure counts are read only when the restart policy may need them
    const failures = own.some((a) => isDown(a.state) || a.state === 'unhealthy')
      ? failureCounts(await store.listDeploymentEvents(d.name, MAX_DEPLOYMENT_EVENTS), now)
      : new Map<string, number>();
    const reasons = new Map(own.map((a) => [a.id, a.reason]));
    return reconcile({
      name: d.name,
      ownerId: d.ownerId,
      spec,
      nodes,
      allocations,
      grants: new Set(grants),
      now,
      replace,
      failuresOn: (nodeId) => failures.get(shortIdOf(nodeId)) ?? 0,
      exitCode: (id) => this.exitCodes.get(id) ?? exitCodeIn(reasons.get(id) ?? null),
    });
  }

  /**
   * Brings one deployment to its spec: plans, applies the plan at the
   * version it was made from, records its events and tells the nodes.
   * `replace`: allocations of an older spec, each replaced by a new one.
   */
  async reconcileDeployment(
    name: string,
    replace: ReadonlySet<string> = new Set(),
  ): Promise<Reconciliation | null> {
    const { store, clock, log } = this.deps;
    for (let attempt = 1; ; attempt++) {
      const d = await store.getDeployment(name);
      if (!d) return null;
      const r = await this.decide(d, d.spec, replace);
      if (r.nextRestartInMs !== null) this.wake(clock.now() + r.nextRestartInMs);
      if (r.place.length === 0 && r.stop.length === 0 && r.remove.length === 0) {
        await this.notePending(name, r.pending);
        return r;
      }
      const now = clock.now();
      let placed: AllocationRecord[];
      try {
        ({ placed } = await store.putAllocations(name, d.version, {
          now,
          place: r.place,
          stop: r.stop,
          remove: r.remove,
        }));
      } catch (err) {
        if (err instanceof PlanConflictError && attempt < MAX_PLAN_ATTEMPTS) {
          log.debug({ deployment: name, why: err.why, attempt }, 'plan conflict: planning again');
          continue;
        }
        throw err;
      }
      await this.recordApplied(name, r, placed, now);
      return r;
    }
  }

  private async recordApplied(
    name: string,
    r: Reconciliation,
    placed: AllocationRecord[],
    now: number,
  ): Promise<void> {
    const { store } = this.deps;
    const events: NewDeploymentEvent[] = r.events.map((e) => ({ ...e, at: now }));
    placed.forEach((a, i) => {
      const n = r.notes[i];
      if (!n) return;
      const on = `node ${n.shortId}`;
      const e =
        n.why === 'restarted'
          ? restartedEvent(n.replaces ?? '?', n.shortId, a.id, n.cause ?? null)
          : n.why === 'rescheduled'
            ? {
                kind: 'rescheduled',
                message: `replica ${a.id} placed on ${on}, replacing ${n.replaces}`,
              }
            : n.why === 'updated'
              ? { kind: 'placed', message: `replica ${a.id} placed on ${on} with the new spec` }
              : { kind: 'placed', message: `replica ${a.id} placed on ${on}` };
      events.push({ ...e, at: now, allocation: a.id });
    });
    for (const e of events) await store.addDeploymentEvent(name, e);
    await this.notePending(name, r.pending);
    const all = await store.listAllocations({ deployment: name });
    const gone = new Set([...r.stop, ...r.remove]);
    const touched = new Set(placed.map((a) => a.nodeId));
    for (const s of r.plan.stop) if (gone.has(s.allocation)) touched.add(s.node);
    for (const a of all) if (gone.has(a.id)) touched.add(a.nodeId);
    for (const id of r.remove) this.exitCodes.delete(id);
    this.deps.deliver(touched);
    if (gone.size > 0) this.deps.servingChanged(name);
  }

  /** Records why replicas wait, once per distinct reason (not on every pass). */
  private async notePending(name: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const message = `${lines[0]} ${lines
      .slice(1)
      .map((l) => l.trim())
      .join('; ')}; they are placed when a node with room appears`;
    const recent = await this.deps.store.listDeploymentEvents(name, 20);
    const last = recent.filter((e) => e.kind === 'pending').at(-1);
    if (last?.message === message) return;
    await this.deps.store.addDeploymentEvent(name, {
      at: this.deps.clock.now(),
      kind: 'pending',
      message,
    });
  }
}
