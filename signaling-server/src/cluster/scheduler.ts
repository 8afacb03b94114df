/**
 * The scheduler: a pure function from a deployment spec, the nodes, the
 * allocations that exist and who deploys, to a plan — which replicas stay
 * where they are, which are placed where, which stop, and for replicas
 * that fit nowhere the reason on each node. No I/O and no clock: the API
 * returns the plan as it is for `?dryRun=1` and carries it out otherwise.
 *
 * Decisions:
 * - Anti-affinity is a limit and a preference: at most `spec.maxPerNode`
 *   replicas on one node (default 1, so a node's death takes one replica at
 *   most), and below that limit Nomad's job anti-affinity penalty still
 *   prefers nodes without one.
 * - Re-planning keeps every replica whose node is online and still
 *   eligible, replaces those on lost nodes, failed ones (avoiding the node
 *   they failed on where another fits) and those whose node no longer
 *   qualifies (grant revoked, deployments turned off, constraints changed).
 * - Scaling down stops, in this order: replicas that are not running,
 *   those on the node with most replicas of the deployment, those on the
 *   fullest node, the newest; the allocation ID breaks the rest.
 * - Placing stops at the first replica that fits nowhere: what is left only
 *   shrinks, so the rest would not fit either. The plan then says how many
 *   are unplaced and why on each node.
 * - Nodes are tried in ID order and a tie keeps the lower ID, so the same
 *   input always gives the same plan.
 * - A node that is not the deployer's and not granted to them is named in
 *   the reasons only when the spec names it (constraints.nodes); the rest
 *   are counted, so a plan never shows strangers' nodes.
 * - Changing a running deployment's image or resources (a rolling update)
 *   is the caller's: it passes the allocations it still wants kept.
 */
import type { DeploymentSpec, ReplicaResources } from '@peerway/protocol';
import { antiAffinityRefusal, capacityOf, eligibility, fitRefusal, fits, freeOf } from './feasible';
import type {
  Allocation,
  Deployer,
  Kept,
  NodeReason,
  Placed,
  Plan,
  PlanOptions,
  Refusal,
  SchedulerNode,
  StopReason,
  Stopped,
} from './types';
import { FAILED_HERE_PENALTY, antiAffinityScore, finalScore, fitScore } from './rank';

export type * from './types';

const ZERO: ReplicaResources = { cpuMillis: 0, memoryBytes: 0, gpu: 0 };

function add(a: ReplicaResources, b: ReplicaResources, sign = 1): ReplicaResources {
  return {
    cpuMillis: a.cpuMillis + sign * b.cpuMillis,
    memoryBytes: a.memoryBytes + sign * b.memoryBytes,
    gpu: a.gpu + sign * b.gpu,
  };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function isSortedById(xs: readonly { id: string }[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1]!.id > xs[i]!.id) return false;
  return true;
}

/** The larger of a node's CPU and memory use, as a fraction of what it offers. */
function fullness(capacity: ReplicaResources, used: ReplicaResources): number {
  const cpu = capacity.cpuMillis > 0 ? used.cpuMillis / capacity.cpuMillis : 1;
  const mem = capacity.memoryBytes > 0 ? used.memoryBytes / capacity.memoryBytes : 1;
  return Math.max(cpu, mem);
}

interface Candidate {
  node: SchedulerNode;
  capacity: ReplicaResources;
}

/**
 * Plans a deployment: keeps what is healthy where it is, replaces what
 * was lost, places what is missing (filter, then score), stops what is too
 * many. `allocations` are all allocations that hold resources, of every
 * deployment, so free resources are right.
 */
export function plan(
  spec: DeploymentSpec,
  nodes: readonly SchedulerNode[],
  allocations: readonly Allocation[],
  opts: PlanOptions,
): Plan {
  const who: Deployer = { user: opts.deployer, grants: opts.grants ?? new Set() };
  // callers usually pass nodes in ID order already: check in O(n) before sorting
  const sorted = isSortedById(nodes) ? nodes : [...nodes].sort(byId);
  const nodeById = new Map(sorted.map((n) => [n.id, n]));
  const refusal = new Map<string, Refusal | null>();
  for (const n of sorted) refusal.set(n.id, eligibility(n, spec, who));
  const capacity = new Map(sorted.map((n) => [n.id, capacityOf(n)]));

  const stop: Stopped[] = [];
  const stopped = new Set<string>();
  const stopOne = (a: Allocation, reason: StopReason, message: string) => {
    stop.push({
      allocation: a.id,
      node: a.node,
      shortId: nodeById.get(a.node)?.shortId ?? a.node,
      reason,
      message,
    });
    stopped.add(a.id);
  };

  // 1. This deployment's replicas: lost, failed or no longer eligible ones go.
  const own = allocations
    .filter((a) => a.deployment === spec.name)
    .sort((a, b) => a.createdAt - b.createdAt || byId(a, b));
  const failedOn = new Set<string>();
  let alive: Allocation[] = [];
  for (const a of own) {
    const n = nodeById.get(a.node);
    const why = n ? refusal.get(n.id) : null;
    if (!n) stopOne(a, 'node_unknown', `node ${a.node} is no longer known`);
    else if (!n.online) stopOne(a, 'node_lost', `node ${n.shortId} is offline`);
    else if (a.state === 'failed') {
      failedOn.add(n.id);
      stopOne(a, 'failed', `failed on node ${n.shortId}`);
    } else if (why) stopOne(a, 'ineligible', `node ${n.shortId}: ${why.message}`);
    else alive.push(a);
  }
  const replaceable = stop.map((s) => s.allocation);

  // 2. More on one node than maxPerNode allows (the spec changed): the newest go.
  const perNode = new Map<string, number>();
  const within: Allocation[] = [];
  for (const a of alive) {
    const count = perNode.get(a.node) ?? 0;
    if (count < spec.maxPerNode) {
      perNode.set(a.node, count + 1);
      within.push(a);
    }
  }
  const inside = new Set(within);
  for (const a of [...alive].reverse()) {
    if (!inside.has(a)) {
      stopOne(
        a,
        'max_per_node',
        `more than maxPerNode: ${spec.maxPerNode} on node ${nodeById.get(a.node)?.shortId}`,
      );
    }
  }
  alive = within;

  // What is in use on each node, without what this plan stops.
  const used = new Map<string, ReplicaResources>();
  for (const a of allocations) {
    if (stopped.has(a.id) || !nodeById.has(a.node)) continue;
    used.set(a.node, add(used.get(a.node) ?? ZERO, a.resources));
  }

  // 3. Too many: scale down.
  if (alive.length > spec.replicas) {
    const order = [...alive].sort((a, b) => {
      const notRunning = (x: Allocation) =>
        x.state !== undefined && x.state !== 'running' ? 1 : 0;
      const full = (x: Allocation) =>
        fullness(capacity.get(x.node) ?? ZERO, used.get(x.node) ?? ZERO);
      return (
        notRunning(b) - notRunning(a) ||
        (perNode.get(b.node) ?? 0) - (perNode.get(a.node) ?? 0) ||
        full(b) - full(a) ||
        b.createdAt - a.createdAt ||
        byId(b, a)
      );
    });
    for (const a of order.slice(0, alive.length - spec.replicas)) {
      stopOne(a, 'scale_down', `scale down to ${spec.replicas}`);
      perNode.set(a.node, (perNode.get(a.node) ?? 1) - 1);
      used.set(a.node, add(used.get(a.node) ?? ZERO, a.resources, -1));
    }
    alive = alive.filter((a) => !stopped.has(a.id));
  }
  const keep: Kept[] = alive.map((a) => ({
    allocation: a.id,
    node: a.node,
    shortId: nodeById.get(a.node)?.shortId ?? a.node,
  }));

  // 4. Place what is missing, one replica at a time, each seeing the ones before.
  const candidates: Candidate[] = sorted
    .filter((n) => refusal.get(n.id) === null)
    .map((n) => ({ node: n, capacity: capacity.get(n.id) ?? ZERO }));
  const need = spec.resources;
  const place: Placed[] = [];
  const missing = Math.max(0, spec.replicas - alive.length);
  let unplaced = 0;
  for (let i = 0; i < missing; i++) {
    let best: Candidate | null = null;
    let bestScore = -Infinity;
    for (const c of candidates) {
      const onNode = perNode.get(c.node.id) ?? 0;
      if (onNode >= spec.maxPerNode) continue;
      const inUse = used.get(c.node.id) ?? ZERO;
      if (!fits(need, c.capacity, inUse)) continue;
      // the hot loop (nodes × replicas): no message built, no array for one score
      let score = fitScore(spec.placement, c.capacity, add(inUse, need));
      const anti = antiAffinityScore(onNode, spec.replicas);
      const penalty = failedOn.has(c.node.id) ? FAILED_HERE_PENALTY : null;
      if (anti !== null || penalty !== null) {
        score = finalScore([
          score,
          ...(anti === null ? [] : [anti]),
          ...(penalty === null ? [] : [penalty]),
        ]);
      }
      if (score > bestScore) {
        best = c;
        bestScore = score;
      }
    }
    if (!best) {
      unplaced = missing - i;
      break;
    }
    const id = best.node.id;
    used.set(id, add(used.get(id) ?? ZERO, need));
    perNode.set(id, (perNode.get(id) ?? 0) + 1);
    place.push({
      node: id,
      shortId: best.node.shortId,
      resources: { ...need },
      score: bestScore,
      replaces: replaceable[place.length] ?? null,
    });
  }

  // 5. Why the rest fit nowhere, per node.
  const reasons: NodeReason[] = [];
  let otherNodes = 0;
  if (unplaced > 0) {
    for (const n of sorted) {
      let why = refusal.get(n.id) ?? null;
      if (why?.code === 'not_permitted' && !spec.constraints.nodes.includes(n.shortId)) {
        otherNodes++;
        continue;
      }
      why ??=
        antiAffinityRefusal(spec, perNode.get(n.id) ?? 0) ??
        fitRefusal(need, freeOf(capacity.get(n.id) ?? ZERO, used.get(n.id) ?? ZERO));
      if (why)
        reasons.push({ node: n.id, shortId: n.shortId, code: why.code, message: why.message });
    }
  }

  return {
    deployment: spec.name,
    desired: spec.replicas,
    keep,
    place,
    stop,
    unplaced,
    reasons,
    otherNodes,
    changed: place.length > 0 || stop.length > 0,
  };
}

/** The plan in lines a person reads (the CLI's `--dry-run`, events). */
export function describePlan(p: Plan): string[] {
  const lines: string[] = [];
  for (const k of p.keep) lines.push(`keep ${k.allocation} on node ${k.shortId}`);
  for (const s of p.stop) lines.push(`stop ${s.allocation} on node ${s.shortId}: ${s.message}`);
  for (const pl of p.place) {
    const was = pl.replaces ? ` (replaces ${pl.replaces})` : '';
    lines.push(`place a replica on node ${pl.shortId}${was}`);
  }
  if (p.unplaced > 0) {
    const n = p.unplaced === 1 ? '1 replica fits' : `${p.unplaced} replicas fit`;
    lines.push(`${n} on no node:`);
    for (const r of p.reasons) lines.push(`  node ${r.shortId}: ${r.message}`);
    if (p.otherNodes > 0) {
      lines.push(
        `  ${p.otherNodes} other node${p.otherNodes === 1 ? ' is' : 's are'} not yours and not granted to you`,
      );
    }
    if (p.reasons.length === 0 && p.otherNodes === 0) {
      lines.push('  no nodes: start an agent with `peerway-agent run --deployments`');
    }
  }
  if (!p.changed && p.unplaced === 0) lines.push(`no change: ${p.desired} of ${p.desired} placed`);
  return lines;
}
