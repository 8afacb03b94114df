/**
 * What both stores check the same way on the way in and out: deployment
 * specs and node resource reports (kept as JSON, parsed again on read),
 * agents' state reports, and how a report changes an allocation.
 */
import {
  NodeResourcesSchema,
  PeerwayError,
  REPLICA_STATES,
  parseDeploymentSpec,
  type DeploymentSpec,
  type NodeResources,
  type ReplicaState,
} from '@peerway/protocol';
import type { AllocationRecord, AllocationReport, NewDeployment } from './store';

/** Longest reason or event message kept, in characters; longer ones are cut with "…". */
export const MAX_STORED_TEXT_CHARS = 2000;

function specProblems(errors: { path: string; message: string }[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
}

/** The spec as the store keeps it (normalised JSON), or a bad_request saying what is wrong. */
export function specToStore(d: NewDeployment): string {
  const r = parseDeploymentSpec(d.spec);
  if (!r.ok) {
    throw new PeerwayError('bad_request', `deployment spec: ${specProblems(r.errors)}`);
  }
  if (r.spec.name !== d.name) {
    throw new PeerwayError(
      'bad_request',
      `deployment "${d.name}" was given a spec named "${r.spec.name}"`,
    );
  }
  return JSON.stringify(r.spec);
}

/** A stored spec, parsed again; a spec that no longer passes is an internal error naming it. */
export function specFromStore(name: string, json: string): DeploymentSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new PeerwayError('internal', `stored spec of deployment "${name}" is not JSON`, {
      cause,
    });
  }
  const r = parseDeploymentSpec(raw);
  if (!r.ok) {
    throw new PeerwayError(
      'internal',
      `stored spec of deployment "${name}" no longer passes validation (${specProblems(r.errors)}); deploy it again`,
    );
  }
  return r.spec;
}

/** A resource report as JSON, or a bad_request naming the first problem. */
export function resourcesToStore(nodeId: string, report: NodeResources): string {
  const r = NodeResourcesSchema.safeParse(report);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    throw new PeerwayError(
      'bad_request',
      `resource report of node ${nodeId}: ${where}${first?.message ?? 'invalid'}`,
    );
  }
  return JSON.stringify(r.data);
}

/** A stored report, or null when absent or no longer valid (the agent reports again on connect). */
export function resourcesFromStore(json: string | null | undefined): NodeResources | null {
  if (!json) return null;
  try {
    const r = NodeResourcesSchema.safeParse(JSON.parse(json));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Cuts text a store keeps to MAX_STORED_TEXT_CHARS. */
export function boundedText(s: string): string {
  return s.length > MAX_STORED_TEXT_CHARS ? s.slice(0, MAX_STORED_TEXT_CHARS - 1) + '…' : s;
}

/** Throws bad_request unless `state` is one of REPLICA_STATES. */
export function checkReplicaState(state: string): asserts state is ReplicaState {
  if (!(REPLICA_STATES as readonly string[]).includes(state)) {
    throw new PeerwayError(
      'bad_request',
      `"${state}" is not a replica state: one of ${REPLICA_STATES.join(', ')}`,
    );
  }
}

/** States that count as a failure of a replica its server still wants running. */
const FAILING: ReadonlySet<ReplicaState> = new Set(['failed', 'exited']);

/**
 * An allocation after an agent's report: `since` moves only when the state
 * changes, `version` on any change, `failures` on entering failed or exited
 * while desired `run`. The same record back when nothing changed.
 */
export function applyReport(a: AllocationRecord, r: AllocationReport): AllocationRecord {
  const reason = r.reason === null ? null : boundedText(r.reason);
  if (a.state === r.state && a.reason === reason) return a;
  const entered = a.state !== r.state;
  return {
    ...a,
    state: r.state,
    reason,
    since: entered ? r.now : a.since,
    version: a.version + 1,
    failures: a.failures + (entered && a.desired === 'run' && FAILING.has(r.state) ? 1 : 0),
  };
}
