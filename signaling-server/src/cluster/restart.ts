/**
 * The restart policy: what the server does about a replica whose container
 * stopped (`exited`) or never started (`failed`). Pure functions: the
 * reconciler passes the facts and carries the answer out.
 *
 * A restart is a new allocation on the same node (the node's agent stops
 * the old container, which is no longer in its set, and runs a new one), so
 * it needs nothing of the agent beyond running what it is sent. After
 * MOVE_AFTER_FAILURES failures on one node within FAILURE_WINDOW_MS the
 * replica moves: the scheduler places it elsewhere and avoids that node
 * where another fits (Nomad's reschedule penalty).
 *
 * A replica that stays `unhealthy` (its agent's health check failed several
 * times in a row) for UNHEALTHY_RESTART_PROBES more intervals is a failure
 * too: restarted with the same backoff, moved after the same count.
 *
 * The failure counts come from the store, so every server instance, and a
 * restarted one, counts the same: each failure the policy acted on left a
 * `restarted` or `moved` event naming its node (`failureCounts`).
 */
import type { DeploymentSpec, ReplicaState, RestartPolicy } from '@peerway/protocol';

/** The wait before the first restart on a node; it doubles with each further failure there. */
export const RESTART_BASE_DELAY_MS = 1000;
/** The longest wait between restarts. */
export const RESTART_MAX_DELAY_MS = 60_000;
/** Failures on one node after which the replica is moved to another. */
export const MOVE_AFTER_FAILURES = 3;
/** Failures older than this are forgotten: a replica that ran fine for so long starts afresh. */
export const FAILURE_WINDOW_MS = 10 * 60_000;
/** Health-check intervals a replica may stay `unhealthy` before it counts as failed. */
export const UNHEALTHY_RESTART_PROBES = 3;

/** How long a replica of `spec` may stay unhealthy before the restart policy acts on it. */
export function unhealthyGraceMs(spec: Pick<DeploymentSpec, 'health'>): number {
  return UNHEALTHY_RESTART_PROBES * spec.health.intervalS * 1000;
}

export type RestartDecision =
  /** The replica stays as it is (the policy says so); `why` in words. */
  | { action: 'leave'; why: string }
  /** A new replica on the same node, `afterMs` after the failure. */
  | { action: 'restart'; afterMs: number }
  /** Too many failures on this node: place it elsewhere now. */
  | { action: 'move'; why: string };

/** The wait before restart number `failures` (1 for the first failure) on one node. */
export function restartDelay(failures: number): number {
  const n = Math.max(1, Math.floor(failures));
  return Math.min(RESTART_MAX_DELAY_MS, RESTART_BASE_DELAY_MS * 2 ** (n - 1));
}

/** Whether a state is a replica that stopped or never started. */
export function isDown(state: ReplicaState): state is 'exited' | 'failed' {
  return state === 'exited' || state === 'failed';
}

/**
 * What to do about a replica that is down. `failuresOnNode` counts this
 * failure too; `exitCode` is the container's when the agent said it
 * (unknown counts as a failure).
 */
export function decideRestart(f: {
  policy: RestartPolicy;
  state: 'exited' | 'failed';
  exitCode?: number | undefined;
  failuresOnNode: number;
}): RestartDecision {
  if (f.policy === 'never') return { action: 'leave', why: 'restart: never leaves it stopped' };
  if (f.policy === 'on-failure' && f.state === 'exited' && f.exitCode === 0)
    return { action: 'leave', why: 'it exited with code 0 and restart: on-failure leaves it' };
  if (f.failuresOnNode >= MOVE_AFTER_FAILURES)
    return {
      action: 'move',
      why: `it failed ${f.failuresOnNode} times on this node: moving it to another`,
    };
  return { action: 'restart', afterMs: restartDelay(f.failuresOnNode) };
}

/** The event of a restart on the node: `failureCounts` reads its node back from it. */
export function restartedEvent(old: string, shortId: string, next: string, cause: string | null) {
  return {
    kind: 'restarted',
    message: `replica ${old} restarted on node ${shortId} as ${next}${cause ? `: ${cause}` : ''}`,
  };
}

/** The event of a move off a node after repeated failures there. */
export function movedEvent(id: string, shortId: string, cause: string | null) {
  return {
    kind: 'moved',
    message: `replica ${id} failed repeatedly on node ${shortId}${cause ? ` (the last time ${cause})` : ''}: it moves to another node`,
  };
}

const FAILURE_NODE: Record<string, RegExp> = {
  restarted: /^replica \S+ restarted on node (\S+) as /,
  moved: /^replica \S+ failed repeatedly on node ([^\s:]+)/,
};

/**
 * Failures the restart policy acted on, per node short ID, within
 * FAILURE_WINDOW_MS before `now`: one per `restarted` or `moved` event (of
 * one deployment, as the store keeps them). The failure being decided now
 * is not among them.
 */
export function failureCounts(
  events: readonly { at: number; kind: string; message: string }[],
  now: number,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    const re = FAILURE_NODE[e.kind];
    if (!re || now - e.at >= FAILURE_WINDOW_MS) continue;
    const node = re.exec(e.message)?.[1];
    if (node) out.set(node, (out.get(node) ?? 0) + 1);
  }
  return out;
}

/** The exit code in an agent's reason ("the container exited with code 3"), if it says one. */
export function exitCodeIn(reason: string | null): number | undefined {
  const m = reason ? /exited with code (\d+)/.exec(reason) : null;
  return m ? Number(m[1]) : undefined;
}
