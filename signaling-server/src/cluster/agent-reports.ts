/**
 * What agents say about the cluster, as the server hears it: a node's
 * resources (clamped to limits), its replicas' states (only its own
 * allocations; each change an event, a replica down or unhealthy a kick
 * of the loop, a stopped one the node says is gone forgotten), and what
 * the node should run and may serve.
 */
import type {
  AllocationAssignment,
  AllocationReport,
  NodeResources,
  ReplicaState,
} from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import { PlanConflictError, type DeploymentRecord } from '../store/store';
import { clampNodeReport } from './node-report';
import { MAX_PLAN_ATTEMPTS, type DeploymentsDeps, type ReconcileLoop } from './loop';
import { isDown } from './restart';
import { deploymentServingRight } from './serving';

/** Exit codes remembered for the restart policy (the oldest go first). */
const MAX_EXIT_CODES = 10_000;

const STATE_EVENT: Record<ReplicaState, string> = {
  pending: 'pending',
  pulling: 'pulling',
  starting: 'starting',
  running: 'started',
  unhealthy: 'unhealthy',
  exited: 'exited',
  failed: 'failed',
};

export class AgentReports {
  constructor(
    private readonly deps: DeploymentsDeps,
    private readonly loop: ReconcileLoop,
  ) {}

  /** Keeps a node's resource report; a node with room may take pending replicas now. */
  async resourcesReported(nodeId: string, r: NodeResources): Promise<void> {
    const { report, clamped } = clampNodeReport(r);
    if (clamped.length > 0)
      this.deps.log.warn({ node: nodeId.slice(0, 12), clamped }, 'resource report cut to limits');
    if (!(await this.deps.store.putNodeResources(nodeId, report))) return;
    this.loop.nodeOnline(nodeId);
    this.deps.deliver([nodeId]);
    this.loop.kick();
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
        this.loop.exitCodes.set(rec.id, rep.exitCode);
        if (this.loop.exitCodes.size > MAX_EXIT_CODES)
          this.loop.exitCodes.delete(this.loop.exitCodes.keys().next().value!);
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
    if (restart) this.loop.kick();
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
        for (const id of remove) this.loop.exitCodes.delete(id);
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
