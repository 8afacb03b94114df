/**
 * Feasibility: may this node take a replica of this deployment at all, and
 * does one fit in what it has free? Each check answers with a reason a
 * person can act on, or null. Pure functions over plain data (the order
 * and shape follow Nomad's scheduler/feasible.go).
 */
import {
  deployableResources,
  formatBytes,
  formatCpu,
  type DeployableResources,
  type DeploymentSpec,
  type ReplicaResources,
} from '@peerway/protocol';
import type { Deployer, Refusal, SchedulerNode } from './types';

export type { Deployer, ReasonCode, Refusal } from './types';

/**
 * The checks that do not depend on what else is placed: permission,
 * presence, the owner's switch, the engine, the spec's constraints. The
 * first that fails answers; permission comes first so nothing else is said
 * about a stranger's node.
 */
export function eligibility(
  node: SchedulerNode,
  spec: DeploymentSpec,
  who: Deployer,
): Refusal | null {
  if (node.owner !== who.user && !who.grants.has(node.id)) {
    return { code: 'not_permitted', message: 'not yours and not granted to you for deploying' };
  }
  if (!node.online) return { code: 'offline', message: 'offline' };
  const r = node.resources;
  if (r === null) {
    return {
      code: 'no_report',
      message: 'has not reported its resources (its agent may predate deployments)',
    };
  }
  if (!r.deployments) {
    return {
      code: 'not_enabled',
      message: 'deployments not enabled (its owner starts the agent with --deployments)',
    };
  }
  if (r.capacity.runtime === null) {
    return { code: 'no_runtime', message: 'no container runtime (Podman or Docker) on it' };
  }
  const only = spec.constraints.nodes;
  if (only.length > 0 && !only.includes(node.shortId)) {
    return { code: 'not_listed', message: `not among constraints.nodes (${only.join(', ')})` };
  }
  const missing: string[] = [];
  for (const [key, want] of Object.entries(spec.constraints.labels)) {
    const have = r.labels[key];
    if (have === undefined) missing.push(`label ${key}=${want} missing`);
    else if (have !== want) missing.push(`label ${key} is ${have}, not ${want}`);
  }
  if (missing.length > 0) return { code: 'label', message: missing.join('; ') };
  return null;
}

/** What a node can give deployments in all, or zero when it reported nothing. */
export function capacityOf(node: SchedulerNode): DeployableResources {
  return node.resources
    ? deployableResources(node.resources)
    : { cpuMillis: 0, memoryBytes: 0, gpu: 0 };
}

/** What is left: capacity less what is in use; never below zero. */
export function freeOf(capacity: DeployableResources, used: ReplicaResources): ReplicaResources {
  return {
    cpuMillis: Math.max(0, capacity.cpuMillis - used.cpuMillis),
    memoryBytes: Math.max(0, capacity.memoryBytes - used.memoryBytes),
    gpu: Math.max(0, capacity.gpu - used.gpu),
  };
}

/** Whether `need` fits beside `used` within `capacity` (what `fitRefusal` decides, without words). */
export function fits(
  need: ReplicaResources,
  capacity: ReplicaResources,
  used: ReplicaResources,
): boolean {
  return (
    need.cpuMillis <= capacity.cpuMillis - used.cpuMillis &&
    need.memoryBytes <= capacity.memoryBytes - used.memoryBytes &&
    need.gpu <= capacity.gpu - used.gpu
  );
}

/** Whether `need` fits in `free`; otherwise each shortfall, e.g. "needs 512 MiB memory, 300 MiB free". */
export function fitRefusal(need: ReplicaResources, free: ReplicaResources): Refusal | null {
  const short: string[] = [];
  if (need.cpuMillis > free.cpuMillis) {
    short.push(`needs ${formatCpu(need.cpuMillis)}, ${formatCpu(free.cpuMillis)} free`);
  }
  if (need.memoryBytes > free.memoryBytes) {
    short.push(
      `needs ${formatBytes(need.memoryBytes)} memory, ${formatBytes(free.memoryBytes)} free`,
    );
  }
  if (need.gpu > free.gpu) {
    short.push(`needs ${need.gpu} GPU${need.gpu === 1 ? '' : 's'}, ${free.gpu} free`);
  }
  return short.length > 0 ? { code: 'resources', message: short.join('; ') } : null;
}

/** Replicas of one deployment on one node: at most `spec.maxPerNode`. */
export function antiAffinityRefusal(spec: DeploymentSpec, onNode: number): Refusal | null {
  if (onNode < spec.maxPerNode) return null;
  return {
    code: 'anti_affinity',
    message:
      spec.maxPerNode === 1
        ? `already runs a replica of ${spec.name} (anti-affinity; maxPerNode: 2 would allow a second)`
        : `already runs ${onNode} replicas of ${spec.name} (maxPerNode: ${spec.maxPerNode})`,
  };
}
