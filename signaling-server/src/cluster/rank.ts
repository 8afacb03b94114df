/**
 * Ranking: among the nodes a replica fits on, which is best. Scores are
 * Nomad's (scheduler/rank.go, structs/funcs.go): the bin-packing fit of
 * Google's "BestFit v3" or its mirror for spread, a job anti-affinity
 * penalty, a penalty for a node where this deployment's replica failed,
 * all averaged into one final score.
 */
import type { DeployableResources, Placement, ReplicaResources } from '@peerway/protocol';

/** Nomad's fit scores run from 0 to this. */
const MAX_FIT = 18;

/** A node where a replica of this deployment failed is avoided by this much (Nomad's reschedule penalty). */
export const FAILED_HERE_PENALTY = -1;

/**
 * How well a node fits once the replica is on it, in [0, 1]. With free
 * fractions fc and fm of CPU and memory after placing, bin-packing scores
 * 20 − (10^fc + 10^fm) (a full node scores highest), spread
 * (10^fc + 10^fm) − 2 (an empty one does); both bounded to [0, 18], then
 * divided by 18 as Nomad normalises them.
 */
export function fitScore(
  placement: Placement,
  capacity: DeployableResources,
  usedAfter: ReplicaResources,
): number {
  const freeCpu = capacity.cpuMillis > 0 ? 1 - usedAfter.cpuMillis / capacity.cpuMillis : 0;
  const freeMem = capacity.memoryBytes > 0 ? 1 - usedAfter.memoryBytes / capacity.memoryBytes : 0;
  const total = 10 ** freeCpu + 10 ** freeMem;
  const raw = placement === 'binpack' ? 20 - total : total - 2;
  return Math.min(MAX_FIT, Math.max(0, raw)) / MAX_FIT;
}

/**
 * Nomad's job anti-affinity: with `collisions` replicas of the deployment
 * already on the node, −(collisions + 1) / desired; none when there are
 * none, so it only ever pushes replicas apart.
 */
export function antiAffinityScore(collisions: number, desired: number): number | null {
  return collisions > 0 ? -(collisions + 1) / desired : null;
}

/** The final score: the mean of the scores that apply. */
export function finalScore(scores: readonly number[]): number {
  let sum = 0;
  for (const s of scores) sum += s;
  return scores.length > 0 ? sum / scores.length : 0;
}
