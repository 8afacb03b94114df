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
 */
import type { ReplicaState, RestartPolicy } from '@peerway/protocol';

/** The wait before the first restart on a node; it doubles with each further failure there. */
export const RESTART_BASE_DELAY_MS = 1000;
/** The longest wait between restarts. */
export const RESTART_MAX_DELAY_MS = 60_000;
/** Failures on one node after which the replica is moved to another. */
export const MOVE_AFTER_FAILURES = 3;
/** Failures older than this are forgotten: a replica that ran fine for so long starts afresh. */
export const FAILURE_WINDOW_MS = 10 * 60_000;

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

/**
 * Failures per deployment and node, within FAILURE_WINDOW_MS: what
 * `decideRestart` counts. Kept by the instance that hears the reports; an
 * instance that never heard them counts what the store says of the replica.
 */
export class FailureCounter {
  private readonly at = new Map<string, number[]>();

  private key(deployment: string, nodeId: string): string {
    return `${deployment}\u0000${nodeId}`;
  }

  /** One failure at `now`; returns how many there are now within the window. */
  record(deployment: string, nodeId: string, now: number): number {
    const k = this.key(deployment, nodeId);
    const list = (this.at.get(k) ?? []).filter((t) => now - t < FAILURE_WINDOW_MS);
    list.push(now);
    this.at.set(k, list);
    return list.length;
  }

  count(deployment: string, nodeId: string, now: number): number {
    const list = this.at.get(this.key(deployment, nodeId)) ?? [];
    return list.filter((t) => now - t < FAILURE_WINDOW_MS).length;
  }

  /** Forgets a deployment (deleted). */
  forget(deployment: string): void {
    for (const k of this.at.keys()) if (k.startsWith(`${deployment}\u0000`)) this.at.delete(k);
  }
}
