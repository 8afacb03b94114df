/**
 * The JSON the deployments API answers with: a deployment with its
 * replicas and events, and a plan as `?dryRun=1` shows it. Nodes are named
 * by their short IDs, as `peerway nodes` shows them.
 */
import { shortIdOf } from '@peerway/protocol/node';
import type { AllocationRecord, DeploymentEvent, DeploymentRecord } from '../store/store';
import { describePlan, type Plan } from './scheduler';

/** A replica as the API shows it. */
export function replicaView(a: AllocationRecord) {
  return {
    id: a.id,
    node: shortIdOf(a.nodeId),
    state: a.state,
    ...(a.reason ? { reason: a.reason } : {}),
    since: a.since,
    /** `stop` while its node is stopping it. */
    desired: a.desired,
    failures: a.failures,
  };
}

/** What fits nowhere: how many replicas, and why on each node. */
export interface PendingView {
  replicas: number;
  reasons: { node: string; code: string; message: string }[];
  /** Nodes not the owner's and not granted: counted, not named. */
  otherNodes: number;
  lines: string[];
}

export function pendingView(p: Plan, lines: string[]): PendingView {
  return {
    replicas: p.unplaced,
    reasons: p.reasons.map((r) => ({ node: r.shortId, code: r.code, message: r.message })),
    otherNodes: p.otherNodes,
    lines,
  };
}

/** A deployment with its replicas (placed ones, then one `pending` entry per replica that fits nowhere). */
export function deploymentView(
  d: DeploymentRecord,
  allocations: readonly AllocationRecord[],
  extra: { url: string; pending: PendingView | null; events?: readonly DeploymentEvent[] },
) {
  const replicas: {
    id: string | null;
    node: string | null;
    state: string;
    reason?: string;
    since: number;
    desired?: string;
    failures?: number;
  }[] = allocations.map(replicaView);
  const unplaced = extra.pending?.replicas ?? 0;
  for (let i = 0; i < unplaced; i++) {
    replicas.push({
      id: null,
      node: null,
      state: 'pending',
      reason: `fits on no node: ${extra.pending!.lines.slice(1).join('; ').trim() || 'no nodes'}`,
      since: d.updatedAt,
    });
  }
  const run = allocations.filter((a) => a.desired === 'run');
  return {
    name: d.name,
    url: extra.url,
    spec: d.spec,
    version: d.version,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    desired: d.spec.replicas,
    running: run.filter((a) => a.state === 'running').length,
    replicas,
    pending: extra.pending,
    ...(extra.events ? { events: extra.events } : {}),
  };
}

/** A plan as the API shows it: keep, place, stop, and why replicas fit nowhere. */
export function planView(p: Plan) {
  return {
    deployment: p.deployment,
    desired: p.desired,
    keep: p.keep.map((k) => ({ allocation: k.allocation, node: k.shortId })),
    place: p.place.map((x) => ({
      node: x.shortId,
      resources: x.resources,
      score: Math.round(x.score * 1000) / 1000,
      replaces: x.replaces,
    })),
    stop: p.stop.map((s) => ({
      allocation: s.allocation,
      node: s.shortId,
      reason: s.reason,
      message: s.message,
    })),
    unplaced: p.unplaced,
    reasons: p.reasons.map((r) => ({ node: r.shortId, code: r.code, message: r.message })),
    otherNodes: p.otherNodes,
    changed: p.changed,
    lines: describePlan(p),
  };
}
