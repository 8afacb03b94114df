/**
 * The scheduler's plain data: the nodes and allocations it reads, the plan
 * it answers with, the reasons it gives. Types only, so the feasibility
 * checks, the ranking and the planner share them without importing each
 * other.
 */
import type { NodeResources, ReplicaResources, ReplicaState } from '@peerway/protocol';

/** Why a node cannot take a replica, machine-readable. */
export type ReasonCode =
  | 'not_permitted'
  | 'offline'
  | 'no_report'
  | 'not_enabled'
  | 'no_runtime'
  | 'not_listed'
  | 'label'
  | 'anti_affinity'
  | 'resources';

export interface Refusal {
  code: ReasonCode;
  message: string;
}

/** Who deploys, and which nodes they may deploy to besides their own. */
export interface Deployer {
  /** The deploying user's ID, compared with each node's owner. */
  user: string;
  /** IDs of nodes whose owners granted this user the right to deploy there. */
  grants: ReadonlySet<string>;
}

/** A node as the scheduler sees it. */
export interface SchedulerNode {
  /** The ID allocations name their node by; ties between equal scores go to the lower one. */
  id: string;
  /** The short ID people see (`peerway nodes`) and constraints.nodes names. */
  shortId: string;
  /** The owning user's ID; null while unclaimed. */
  owner: string | null;
  /** False once the node counts as lost (offline past the grace period): the caller decides when. */
  online: boolean;
  /** The node's last resource report; null when it has sent none. */
  resources: NodeResources | null;
}

/** A replica the server has placed (in the store), of any deployment. */
export interface Allocation {
  id: string;
  /** The deployment's name. */
  deployment: string;
  /** `SchedulerNode.id` of its node. */
  node: string;
  /** What it holds on its node (the spec's resources when it was placed). */
  resources: ReplicaResources;
  /** When it was placed (ms since the epoch, from the caller's clock): orders "newest". */
  createdAt: number;
  /** Its last reported state; absent while nothing was reported. */
  state?: ReplicaState;
}

export interface PlanOptions {
  /** The deploying user's ID. */
  deployer: string;
  /** IDs of nodes other users granted the deployer for deploying. */
  grants?: ReadonlySet<string>;
}

export interface Kept {
  allocation: string;
  node: string;
  shortId: string;
}

export interface Placed {
  node: string;
  shortId: string;
  resources: ReplicaResources;
  /** The final score (higher is better), for showing why this node. */
  score: number;
  /** The allocation this one replaces (lost node, failed, no longer eligible), if any. */
  replaces: string | null;
}

/**
 * Why a replica stops. `updated` is the caller's: a spec change that
 * needs new containers (image, port, command, env, resources, health)
 * replaces every replica; `plan` itself never gives it.
 */
export type StopReason =
  | 'node_lost'
  | 'node_unknown'
  | 'failed'
  | 'ineligible'
  | 'max_per_node'
  | 'scale_down'
  | 'updated'
  | 'draining';

export interface Stopped {
  allocation: string;
  node: string;
  /** The node's short ID, or its ID when the node is no longer known. */
  shortId: string;
  reason: StopReason;
  message: string;
}

/** Why a node could not take a replica. */
export interface NodeReason {
  node: string;
  shortId: string;
  code: ReasonCode;
  /** Without the node, e.g. "needs 512 MiB memory, 300 MiB free". */
  message: string;
}

/** What would change: the API's dry-run answer and what a real run carries out. */
export interface Plan {
  deployment: string;
  /** The replicas the spec asks for. */
  desired: number;
  keep: Kept[];
  place: Placed[];
  stop: Stopped[];
  /** Replicas that fit on no node; `reasons` says why, per node. */
  unplaced: number;
  reasons: NodeReason[];
  /** Nodes not the deployer's, not granted to them and not named by the spec: counted, not listed. */
  otherNodes: number;
  /** True when the plan places or stops anything. */
  changed: boolean;
}
