/**
 * The cluster's server side, one per server instance: the deployments API's
 * actions, the agents' reports, each node's desired set, and the
 * reconciler loop that keeps every deployment at what its spec asks —
 * replicas of lost nodes rescheduled, failed ones restarted or moved,
 * pending ones placed when a node with room appears.
 *
 * Every change goes through `reconcile` (pure) and one atomic
 * `putAllocations` made at the deployment's version: several instances may
 * run their loops at once, since a plan made from a stale read fails with
 * PlanConflictError and is made again from a fresh one.
 */
import type {
  AllocationAssignment,
  AllocationReport,
  DeploymentSpec,
  NodeResources,
  ReplicaState,
} from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import {
  MAX_DEPLOYMENT_EVENTS,
  NameTakenError,
  PlanConflictError,
  type AllocationRecord,
  type DeploymentRecord,
  type NewDeploymentEvent,
  type NodeRecord,
  type Store,
  type User,
} from '../store/store';
import type { Logger } from '../logger';
import type { Clock } from '../ws/clock';
import { clampNodeReport } from './node-report';
import { needsNewContainers, reconcile, type NodeState, type Reconciliation } from './reconcile';
import { exitCodeIn, failureCounts, isDown, restartedEvent } from './restart';
import { deploymentServingRight } from './serving';
import type { Plan } from './scheduler';
import { deploymentView, pendingView, planView } from './views';

/** The default grace before a lost node's replicas are placed elsewhere (`--reschedule-after`). */
export const DEFAULT_RESCHEDULE_AFTER_MS = 30_000;
/** Attempts at applying one deployment's plan when other writers keep getting ahead. */
const MAX_PLAN_ATTEMPTS = 5;
/** The loop's period: a quarter of the grace, within these bounds. */
const MIN_TICK_MS = 100;
const MAX_TICK_MS = 5000;
/** Events the API shows with a deployment. */
const EVENTS_SHOWN = 100;
/** Exit codes remembered for the restart policy (the oldest go first). */
const MAX_EXIT_CODES = 10_000;

export interface DeploymentsDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  /** Online anywhere in the cluster of server instances. */
  isOnline(nodeId: string): boolean;
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

/** What `POST /api/deployments` did, or would do with `dryRun`. */
export interface ApplyResult {
  created: boolean;
  dryRun: boolean;
  plan: ReturnType<typeof planView>;
  deployment: ReturnType<typeof deploymentView> | null;
  /** Replicas that fit on no node (they stay pending), with the reasons. */
  pending: ReturnType<typeof pendingView> | null;
}

const STATE_EVENT: Record<ReplicaState, string> = {
  pending: 'pending',
  pulling: 'pulling',
  starting: 'starting',
  running: 'started',
  unhealthy: 'unhealthy',
  exited: 'exited',
  failed: 'failed',
};

export class Deployments {
  /** Exit codes as agents reported them (the store keeps them only in the reason's words). */
  private readonly exitCodes = new Map<string, number>();
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
    };
  }

  private async nodeStates(now: number): Promise<NodeState[]> {
    return (await this.deps.store.listAllNodes()).map((n) => this.nodeState(n, now));
  }

  // ---------------------------------------------------------------------------
  // reconciliation

  private async decide(
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

  // ---------------------------------------------------------------------------
  // the API's actions

  /** Creates or updates a deployment (or only plans it: `dryRun`). */
  async apply(user: User, spec: DeploymentSpec, dryRun: boolean): Promise<ApplyResult> {
    const { store, clock } = this.deps;
    const existing = await store.getDeployment(spec.name);
    if (existing && existing.ownerId !== user.id)
      throw new NameTakenError(spec.name, existing.ownerId, 'deployment');
    const svc = await store.getService(spec.name);
    if (svc && svc.ownerId !== user.id) throw new NameTakenError(spec.name, svc.ownerId, 'service');
    const replace = new Set<string>();
    if (existing && needsNewContainers(existing.spec, spec)) {
      for (const a of await store.listAllocations({ deployment: spec.name }))
        if (a.desired === 'run') replace.add(a.id);
    }
    if (dryRun) {
      const now = clock.now();
      const record: DeploymentRecord = existing ?? {
        name: spec.name,
        ownerId: user.id,
        spec,
        version: 0,
        createdAt: now,
        updatedAt: now,
      };
      const r = await this.decide(record, spec, replace);
      return {
        created: !existing,
        dryRun: true,
        plan: planView(r.plan),
        deployment: null,
        pending: r.plan.unplaced > 0 ? pendingView(r.plan, r.pending) : null,
      };
    }
    const now = clock.now();
    const d = await store.putDeployment({ name: spec.name, ownerId: user.id, spec, now });
    await store.setServiceAccess(spec.name, spec.access);
    await store.addDeploymentEvent(spec.name, {
      at: now,
      kind: existing ? 'updated' : 'created',
      message: `${existing ? 'updated to' : 'created at'} version ${d.version}: ${spec.image}, ${spec.replicas} replica${spec.replicas === 1 ? '' : 's'}${replace.size > 0 ? `; the ${replace.size} running replica${replace.size === 1 ? ' is' : 's are'} replaced` : ''}`,
    });
    this.deps.servingChanged(spec.name);
    const r = await this.reconcileDeployment(spec.name, replace);
    const view = await this.get(user.id, spec.name);
    const plan = r?.plan ?? emptyPlan(spec);
    return {
      created: !existing,
      dryRun: false,
      plan: planView(plan),
      deployment: view,
      pending: plan.unplaced > 0 && r ? pendingView(plan, r.pending) : null,
    };
  }

  /** Why replicas of each deployment fit nowhere now (a plan made, not applied). */
  private async pendingOf(d: DeploymentRecord) {
    const running = (await this.deps.store.listAllocations({ deployment: d.name })).filter(
      (a) => a.desired === 'run',
    ).length;
    if (running >= d.spec.replicas) return null;
    const r = await this.decide(d, d.spec, new Set());
    return r.plan.unplaced > 0 ? pendingView(r.plan, r.pending) : null;
  }

  /** The owner's deployments (without events). */
  async list(userId: string) {
    const out = [];
    for (const d of await this.deps.store.listDeployments(userId)) {
      const allocations = await this.deps.store.listAllocations({ deployment: d.name });
      out.push(
        deploymentView(d, allocations, {
          url: this.deps.serviceUrl(d.name),
          pending: await this.pendingOf(d),
        }),
      );
    }
    return out;
  }

  /** One of the owner's deployments with its events; null for anyone else's or none. */
  async get(userId: string, name: string) {
    const d = await this.deps.store.getDeployment(name);
    if (!d || d.ownerId !== userId) return null;
    const allocations = await this.deps.store.listAllocations({ deployment: name });
    return deploymentView(d, allocations, {
      url: this.deps.serviceUrl(name),
      pending: await this.pendingOf(d),
      events: await this.deps.store.listDeploymentEvents(name, EVENTS_SHOWN),
    });
  }

  /** Deletes the owner's deployment: its nodes get their sets without its replicas. */
  async remove(userId: string, name: string): Promise<boolean> {
    const { store } = this.deps;
    const d = await store.getDeployment(name);
    if (!d || d.ownerId !== userId) return false;
    const allocations = await store.listAllocations({ deployment: name });
    if (!(await store.deleteDeployment(name))) return false;
    for (const a of allocations) this.exitCodes.delete(a.id);
    this.deps.deliver(new Set(allocations.map((a) => a.nodeId)));
    this.deps.servingChanged(name);
    this.deps.log.info({ deployment: name, replicas: allocations.length }, 'deployment deleted');
    return true;
  }

  // ---------------------------------------------------------------------------
  // what agents say

  /** Keeps a node's resource report; a node with room may take pending replicas now. */
  async resourcesReported(nodeId: string, r: NodeResources): Promise<void> {
    const { report, clamped } = clampNodeReport(r);
    if (clamped.length > 0)
      this.deps.log.warn({ node: nodeId.slice(0, 12), clamped }, 'resource report cut to limits');
    if (!(await this.deps.store.putNodeResources(nodeId, report))) return;
    this.nodeOnline(nodeId);
    this.deps.deliver([nodeId]);
    this.kick();
  }

  /**
   * Records a node's reports on its replicas. A report about an allocation
   * that is not this node's is ignored (and logged). Returns the names of
   * deployments whose serving nodes may have changed.
   */
  async statusReported(nodeId: string, reports: readonly AllocationReport[]): Promise<string[]> {
    const { store, clock, log } = this.deps;
    const serving = new Set<string>();
    const forget = new Map<string, string[]>();
    let restart = false;
    for (const rep of reports) {
      const prev = await store.getAllocation(rep.id);
      if (!prev || prev.nodeId !== nodeId) {
        log.warn(
          { node: nodeId.slice(0, 12), allocation: rep.id },
          prev ? "report on another node's allocation ignored" : 'report on no allocation ignored',
        );
        continue;
      }
      const now = clock.now();
      const rec = await store.updateAllocationState({
        id: rep.id,
        nodeId,
        state: rep.state,
        reason: rep.reason ?? null,
        now,
      });
      if (!rec) continue;
      if (rep.exitCode !== undefined) {
        this.exitCodes.set(rec.id, rep.exitCode);
        if (this.exitCodes.size > MAX_EXIT_CODES)
          this.exitCodes.delete(this.exitCodes.keys().next().value!);
      }
      if (rec.desired === 'stop' && isDown(rec.state)) {
        forget.set(rec.deployment, [...(forget.get(rec.deployment) ?? []), rec.id]);
      }
      if (prev.state === rec.state) continue;
      const short = shortIdOf(nodeId);
      await store.addDeploymentEvent(rec.deployment, {
        at: now,
        kind: STATE_EVENT[rec.state],
        message: `replica ${rec.id} on node ${short} is ${rec.state}${rec.reason ? `: ${rec.reason}` : ''}`,
        allocation: rec.id,
      });
      if ((prev.state === 'running') !== (rec.state === 'running')) serving.add(rec.deployment);
      // the restart policy's pass decides (and wakes itself for the backoff)
      if (rec.desired === 'run' && (isDown(rec.state) || rec.state === 'unhealthy')) restart = true;
    }
    for (const [name, ids] of forget) await this.forget(name, ids);
    for (const name of serving) this.deps.servingChanged(name);
    if (restart) this.kick();
    return [...serving];
  }

  /** Drops stopped replicas their node said are gone. */
  private async forget(name: string, ids: string[]): Promise<void> {
    for (let attempt = 1; attempt <= MAX_PLAN_ATTEMPTS; attempt++) {
      const d = await this.deps.store.getDeployment(name);
      if (!d) return;
      const present = new Set(
        (await this.deps.store.listAllocations({ deployment: name })).map((a) => a.id),
      );
      const remove = ids.filter((id) => present.has(id));
      if (remove.length === 0) return;
      try {
        await this.deps.store.putAllocations(name, d.version, {
          now: this.deps.clock.now(),
          remove,
        });
        for (const id of remove) this.exitCodes.delete(id);
        return;
      } catch (err) {
        if (!(err instanceof PlanConflictError)) throw err;
      }
    }
  }

  /**
   * The replicas a node should run now: its allocations desired `run`, of
   * deployments its owner lets run there (the owner's own, or a deployer
   * the owner granted the node), and none at all unless the node's agent
   * said it takes deployments. An allocation's assignment never changes in
   * place (a spec that needs new containers replaces the allocation), so
   * its version stays 1.
   */
  async assignments(nodeId: string): Promise<AllocationAssignment[]> {
    const { store } = this.deps;
    const node = await store.getNode(nodeId);
    if (!node?.ownerId || !node.resources?.deployments) return [];
    const out: AllocationAssignment[] = [];
    const specs = new Map<string, DeploymentRecord | null>();
    const granted = new Map<string, boolean>();
    for (const a of await store.listAllocations({ nodeId })) {
      if (a.desired !== 'run') continue;
      if (!specs.has(a.deployment))
        specs.set(a.deployment, await store.getDeployment(a.deployment));
      const d = specs.get(a.deployment);
      if (!d) continue;
      if (d.ownerId !== node.ownerId) {
        if (!granted.has(d.ownerId))
          granted.set(d.ownerId, (await store.deployableNodes(d.ownerId)).includes(nodeId));
        if (!granted.get(d.ownerId)) continue;
      }
      out.push({ id: a.id, deployment: a.deployment, spec: d.spec, version: 1 });
    }
    return out;
  }

  /** null when `service` is no deployment; else whether the node runs a healthy replica of it. */
  async mayServe(nodeId: string, service: string): Promise<boolean | null> {
    return deploymentServingRight(this.deps.store, nodeId, service);
  }
}

function emptyPlan(spec: DeploymentSpec): Plan {
  return {
    deployment: spec.name,
    desired: spec.replicas,
    keep: [],
    place: [],
    stop: [],
    unplaced: 0,
    reasons: [],
    otherNodes: 0,
    changed: false,
  };
}
