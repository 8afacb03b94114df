/**
 * The cluster's server side, one per server instance: the deployments
 * API's actions (apply, list, get, remove) here, over the reconciler loop
 * (`loop.ts`) that keeps every deployment at what its spec asks —
 * replicas of lost nodes rescheduled, failed or unhealthy ones restarted
 * or moved, pending ones placed when a node with room appears — and the
 * agents' reports (`agent-reports.ts`). `Deployments` is what the rest of
 * the server holds: it passes the loop's and the reports' calls through.
 */
import type {
  AllocationAssignment,
  AllocationReport,
  DeploymentSpec,
  NodeResources,
} from '@peerway/protocol';
import { NameTakenError, type DeploymentRecord, type User } from '../store/store';
import { AgentReports } from './agent-reports';
import { ReconcileLoop, type DeploymentsDeps } from './loop';
import { needsNewContainers, type Reconciliation } from './reconcile';
import type { Plan } from './scheduler';
import { deploymentView, pendingView, planView } from './views';

export { DEFAULT_RESCHEDULE_AFTER_MS, type DeploymentsDeps } from './loop';

/** Events the API shows with a deployment. */
const EVENTS_SHOWN = 100;

/** What `POST /api/deployments` did, or would do with `dryRun`. */
export interface ApplyResult {
  created: boolean;
  dryRun: boolean;
  plan: ReturnType<typeof planView>;
  deployment: ReturnType<typeof deploymentView> | null;
  /** Replicas that fit on no node (they stay pending), with the reasons. */
  pending: ReturnType<typeof pendingView> | null;
}

export class Deployments {
  private readonly loop: ReconcileLoop;
  private readonly reports: AgentReports;

  constructor(private readonly deps: DeploymentsDeps) {
    this.loop = new ReconcileLoop(deps);
    this.reports = new AgentReports(deps, this.loop);
  }

  // ---------------------------------------------------------------------------
  // the loop

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Runs a pass of the loop soon (one at a time; a kick during a pass runs another after it). */
  kick(): void {
    this.loop.kick();
  }

  /** Resolves when the pass under way (if any) is over: for tests and shutdown. */
  settled(): Promise<void> {
    return this.loop.settled();
  }

  nodeOnline(nodeId: string): void {
    this.loop.nodeOnline(nodeId);
  }

  /** The node went offline (here, or on the instance that held it): it is lost after the grace. */
  nodeOffline(nodeId: string): void {
    this.loop.nodeOffline(nodeId);
  }

  /** Brings one deployment to its spec (see `ReconcileLoop.reconcileDeployment`). */
  reconcileDeployment(name: string, replace?: ReadonlySet<string>): Promise<Reconciliation | null> {
    return this.loop.reconcileDeployment(name, replace);
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
      const r = await this.loop.decide(record, spec, replace);
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
    const r = await this.loop.reconcileDeployment(spec.name, replace);
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
    const r = await this.loop.decide(d, d.spec, new Set());
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
    for (const a of allocations) this.loop.exitCodes.delete(a.id);
    this.deps.deliver(new Set(allocations.map((a) => a.nodeId)));
    this.deps.servingChanged(name);
    this.deps.log.info({ deployment: name, replicas: allocations.length }, 'deployment deleted');
    return true;
  }

  // ---------------------------------------------------------------------------
  // what agents say

  /** Keeps a node's resource report; a node with room may take pending replicas now. */
  resourcesReported(nodeId: string, r: NodeResources): Promise<void> {
    return this.reports.resourcesReported(nodeId, r);
  }

  /** Records a node's reports on its replicas; the names of deployments whose serving nodes may have changed. */
  statusReported(nodeId: string, reports: readonly AllocationReport[]): Promise<string[]> {
    return this.reports.statusReported(nodeId, reports);
  }

  /** The replicas a node should run now. */
  assignments(nodeId: string): Promise<AllocationAssignment[]> {
    return this.reports.assignments(nodeId);
  }

  /** null when `service` is no deployment; else whether the node runs a healthy replica of it. */
  mayServe(nodeId: string, service: string): Promise<boolean | null> {
    return this.reports.mayServe(nodeId, service);
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
