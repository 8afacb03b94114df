/**
 * One deployment's reconciliation as a pure function: from what the store
 * holds (the spec, every allocation, the nodes with their presence) to the
 * changes that bring it to what the spec asks — the scheduler's plan, the
 * restarts the restart policy wants, the stopped replicas to forget — and
 * the events that say so. No I/O and no clock: the caller reads, calls
 * this, and applies the answer in one atomic `putAllocations`.
 */
import {
  describePlan,
  plan as schedule,
  type Allocation,
  type Plan,
  type SchedulerNode,
} from './scheduler';
import type { DeploymentSpec, NodeResources, ReplicaResources } from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import type { AllocationRecord } from '../store/store';
import { decideRestart, isDown, movedEvent, unhealthyGraceMs } from './restart';

/** A stopped replica whose agent never said it is gone is forgotten after this long. */
export const STOP_FORGET_MS = 2 * 60_000;

/** A node with what the reconciler knows of its presence. */
export interface NodeState {
  id: string;
  shortId: string;
  ownerId: string | null;
  resources: NodeResources | null;
  online: boolean;
  /** Offline past the grace period (`--reschedule-after`): its replicas go elsewhere. */
  lost: boolean;
  /**
   * Its agent is draining (stopping on SIGTERM): it takes no new replica,
   * and each one it holds is replaced elsewhere first, then stopped once
   * the deployment has its replicas running on other nodes.
   */
  draining?: boolean;
}

export interface ReconcileInput {
  name: string;
  ownerId: string;
  spec: DeploymentSpec;
  nodes: readonly NodeState[];
  /** Every allocation in the store, of every deployment, desired run or stop. */
  allocations: readonly AllocationRecord[];
  /** Nodes other users granted the owner for deploying. */
  grants: ReadonlySet<string>;
  now: number;
  /** This deployment's allocations that run an older spec: each is replaced. */
  replace?: ReadonlySet<string>;
  /**
   * Earlier failures of this deployment on the node within the failure
   * window (the store's `restarted` and `moved` events: `failureCounts`).
   */
  failuresOn(nodeId: string): number;
  /** The exit code an agent reported for the allocation, if known. */
  exitCode(allocation: string): number | undefined;
}

/** Why a new allocation is placed, for its event. */
export type PlaceWhy = 'placed' | 'rescheduled' | 'restarted' | 'updated';

export interface PlaceNote {
  nodeId: string;
  shortId: string;
  replaces: string | null;
  why: PlaceWhy;
  /** For a restart: what was wrong with the replica it replaces, in words (null: it was down). */
  cause?: string | null;
}

export interface ReconcileEvent {
  kind: string;
  message: string;
  allocation: string | null;
}

export interface Reconciliation {
  plan: Plan;
  place: { nodeId: string; resources: ReplicaResources }[];
  /** One note per entry of `place`, in the same order. */
  notes: PlaceNote[];
  stop: string[];
  remove: string[];
  /** Events about stops and removals (placements get theirs once their IDs are known). */
  events: ReconcileEvent[];
  /** When the next restart falls due (ms from now), if one waits. */
  nextRestartInMs: number | null;
  /** Lines about replicas that fit nowhere (empty when all are placed). */
  pending: string[];
}

const ZERO: ReplicaResources = { cpuMillis: 0, memoryBytes: 0, gpu: 0 };

/**
 * A node offline within its grace period keeps the deployment's replicas it
 * holds but takes no new one: its offer is cut to what it holds already.
 */
function frozen(r: NodeResources, held: ReplicaResources): NodeResources {
  return { ...r, offer: { cpuCores: held.cpuMillis / 1000, memoryBytes: held.memoryBytes } };
}

/** The plan's lines from "… fit on no node" on, for the pending event and the API. */
export function pendingLines(p: Plan): string[] {
  if (p.unplaced === 0) return [];
  const lines = describePlan(p);
  const at = lines.findIndex((l) => / on no node:$/.test(l));
  return at < 0 ? [] : lines.slice(at);
}

/** Decides one deployment's changes (see the module comment). */
export function reconcile(input: ReconcileInput): Reconciliation {
  const { name, spec, now } = input;
  const replace = input.replace ?? new Set<string>();
  const nodeById = new Map(input.nodes.map((n) => [n.id, n]));
  const short = (id: string) => nodeById.get(id)?.shortId ?? shortIdOf(id);
  const drainingNode = (id: string) => {
    const n = nodeById.get(id);
    return n?.draining === true && n.online;
  };
  const events: ReconcileEvent[] = [];
  const remove: string[] = [];
  const stop: string[] = [];

  const own = input.allocations.filter((a) => a.deployment === name);
  const running = input.allocations.filter((a) => a.desired === 'run');

  // Replicas already told to stop: forgotten once their node cannot say more.
  for (const a of own) {
    if (a.desired !== 'stop') continue;
    const n = nodeById.get(a.nodeId);
    if (!n || !n.online || now - a.since > STOP_FORGET_MS) remove.push(a.id);
  }

  // The restart policy, for replicas that are down or unhealthy past the grace.
  const move = new Set<string>();
  const cause = new Map<string, string>();
  const restartHere: AllocationRecord[] = [];
  let nextRestartInMs: number | null = null;
  const soon = (ms: number) => (nextRestartInMs = Math.min(nextRestartInMs ?? Infinity, ms));
  const graceMs = unhealthyGraceMs(spec);
  for (const a of own) {
    if (a.desired !== 'run' || replace.has(a.id)) continue;
    if (!isDown(a.state) && a.state !== 'unhealthy') continue;
    if (!nodeById.get(a.nodeId)?.online) continue; // lost or not: presence decides first
    if (drainingNode(a.nodeId)) continue; // replaced elsewhere, not restarted there
    let failedAt = a.since;
    if (a.state === 'unhealthy') {
      failedAt = a.since + graceMs;
      if (spec.restart === 'never') continue;
      if (now < failedAt) {
        soon(failedAt - now);
        continue;
      }
      cause.set(
        a.id,
        `it was unhealthy for ${Math.round((now - a.since) / 1000)} s${a.reason ? ` (${a.reason})` : ''}`,
      );
    }
    const d = decideRestart({
      policy: spec.restart,
      state: a.state === 'unhealthy' ? 'failed' : a.state,
      exitCode: input.exitCode(a.id),
      failuresOnNode: input.failuresOn(a.nodeId) + Math.max(1, a.failures),
    });
    if (d.action === 'move') move.add(a.id);
    else if (d.action === 'restart') {
      const due = failedAt + d.afterMs;
      if (now >= due) restartHere.push(a);
      else soon(due - now);
    }
  }

  // What the scheduler sees: every replica desired run (an older spec's are
  // left out: they stop before the new ones are placed, so their room is free).
  const held = new Map<string, ReplicaResources>();
  const holdsOwn = new Set<string>();
  const allocations: Allocation[] = [];
  for (const a of running) {
    if (replace.has(a.id)) continue;
    // this deployment's replicas on a draining node: the scheduler places
    // their replacements as if they were gone (they stop further down)
    if (a.deployment === name && drainingNode(a.nodeId)) continue;
    const h = held.get(a.nodeId) ?? ZERO;
    held.set(a.nodeId, {
      cpuMillis: h.cpuMillis + a.resources.cpuMillis,
      memoryBytes: h.memoryBytes + a.resources.memoryBytes,
      gpu: h.gpu + a.resources.gpu,
    });
    const mine = a.deployment === name;
    if (mine) holdsOwn.add(a.nodeId);
    allocations.push({
      id: a.id,
      deployment: a.deployment,
      node: a.nodeId,
      resources: a.resources,
      createdAt: a.createdAt,
      // only a replica to move counts as failed: the others stay where they are
      state: mine && move.has(a.id) ? 'failed' : a.state === 'failed' ? 'exited' : a.state,
    });
  }
  const nodes: SchedulerNode[] = input.nodes.map((n) => {
    const grace = !n.online && !n.lost && holdsOwn.has(n.id);
    return {
      id: n.id,
      shortId: n.shortId,
      owner: n.ownerId,
      online: (n.online && !n.draining) || grace,
      resources: grace && n.resources ? frozen(n.resources, held.get(n.id) ?? ZERO) : n.resources,
    };
  });
  const plan = schedule(spec, nodes, allocations, {
    deployer: input.ownerId,
    grants: input.grants,
  });

  const stoppedByPlan = new Set<string>();
  for (const s of plan.stop) {
    stoppedByPlan.add(s.allocation);
    if (s.reason === 'node_lost' || s.reason === 'node_unknown') {
      remove.push(s.allocation);
      events.push({
        kind: 'node-lost',
        message: `node ${s.shortId} is lost (${s.reason === 'node_lost' ? 'offline longer than the reschedule grace' : 'no longer known'}): replica ${s.allocation} is rescheduled`,
        allocation: s.allocation,
      });
    } else {
      stop.push(s.allocation);
      events.push({
        ...(s.reason === 'failed'
          ? movedEvent(s.allocation, s.shortId, cause.get(s.allocation) ?? null)
          : {
              kind: 'stopped',
              message: `replica ${s.allocation} on node ${s.shortId} stops: ${s.message}`,
            }),
        allocation: s.allocation,
      });
    }
  }
  const place: Reconciliation['place'] = [];
  const notes: PlaceNote[] = [];
  for (const p of plan.place) {
    place.push({ nodeId: p.node, resources: p.resources });
    const why: PlaceWhy = replace.size > 0 ? 'updated' : p.replaces ? 'rescheduled' : 'placed';
    notes.push({ nodeId: p.node, shortId: p.shortId, replaces: p.replaces, why });
  }
  for (const a of restartHere) {
    if (stoppedByPlan.has(a.id)) continue;
    stop.push(a.id);
    place.push({ nodeId: a.nodeId, resources: a.resources });
    notes.push({
      nodeId: a.nodeId,
      shortId: short(a.nodeId),
      replaces: a.id,
      why: 'restarted',
      cause: cause.get(a.id) ?? null,
    });
  }
  for (const a of own) {
    if (!replace.has(a.id) || a.desired !== 'run') continue;
    stop.push(a.id);
    events.push({
      kind: 'stopped',
      message: `replica ${a.id} on node ${short(a.nodeId)} stops: the spec changed`,
      allocation: a.id,
    });
    plan.stop.push({
      allocation: a.id,
      node: a.nodeId,
      shortId: short(a.nodeId),
      reason: 'updated',
      message: 'the spec changed: a new replica takes its place',
    });
    plan.changed = true;
  }

  // Make before break: a draining node's replicas stop once the deployment
  // runs its replicas on other nodes (their replacements are running).
  const runningElsewhere = own.filter(
    (a) =>
      a.desired === 'run' && !replace.has(a.id) && !drainingNode(a.nodeId) && a.state === 'running',
  ).length;
  if (runningElsewhere >= spec.replicas) {
    for (const a of own) {
      if (a.desired !== 'run' || !drainingNode(a.nodeId) || stop.includes(a.id)) continue;
      stop.push(a.id);
      const message = 'its node is draining, and the replicas run on other nodes';
      events.push({
        kind: 'stopped',
        message: `replica ${a.id} on node ${short(a.nodeId)} stops: ${message}`,
        allocation: a.id,
      });
      plan.stop.push({
        allocation: a.id,
        node: a.nodeId,
        shortId: short(a.nodeId),
        reason: 'draining',
        message,
      });
      plan.changed = true;
    }
  }
  return {
    plan,
    place,
    notes,
    stop,
    remove: [...new Set(remove)],
    events,
    nextRestartInMs,
    pending: pendingLines(plan),
  };
}

/** Whether changing a spec from `a` to `b` needs new containers. */
export function needsNewContainers(a: DeploymentSpec, b: DeploymentSpec): boolean {
  const runtime = (s: DeploymentSpec) =>
    JSON.stringify([s.image, s.port, s.command, s.args, s.env, s.resources, s.health]);
  return runtime(a) !== runtime(b);
}
