/**
 * The container runtime's vocabulary: what a replica is asked to run, what
 * the engine reports back, and the states a replica goes through. Plain data
 * only, so the agent's deployment code and its tests share one shape.
 */

/** Labels every container the agent runs carries (docs/design.md, "The cluster"). */
export const LABEL_NODE = 'peerway.node';
export const LABEL_DEPLOYMENT = 'peerway.deployment';
export const LABEL_ALLOCATION = 'peerway.allocation';

/** A replica's states, in the order a healthy start goes through them (the protocol's list). */
export { REPLICA_STATES, type ReplicaState } from '@peerway/protocol';
import type { ReplicaState } from '@peerway/protocol';

/** A state with the reason for it in words, and when it began (ms since the epoch). */
export interface ReplicaStatus {
  state: ReplicaState;
  reason: string;
  since: number;
  /** Set in `exited`: the container's exit code. */
  exitCode?: number;
}

/** Which replica a container belongs to. */
export interface PeerwayLabels {
  node: string;
  deployment: string;
  allocation: string;
}

/** The container engine behind the socket. */
export interface RuntimeInfo {
  name: 'podman' | 'docker';
  version: string;
  apiVersion: string;
}

/** `detect()`: the runtime, or why there is none. */
export type Detection = { ok: true; runtime: RuntimeInfo } | { ok: false; reason: string };

/** One soft/hard resource limit for the container's processes. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** What `run()` starts. */
export interface RunSpec {
  image: string;
  /** The TCP port the container listens on; published on 127.0.0.1 at a free host port. */
  port: number;
  labels: PeerwayLabels;
  /** More labels (e.g. `peerway.test`); they may not override the three above. */
  extraLabels?: Record<string, string>;
  /** Replaces the image's entrypoint (the spec's `command`); its default arguments then go too. */
  entrypoint?: string[];
  /** Replaces the image's command, its arguments after the entrypoint (the spec's `args`). */
  command?: string[];
  env?: Record<string, string>;
  memoryBytes?: number;
  /** CPU limit in cores (0.5 = half a core). */
  cpu?: number;
  /** Defaults to nofile/nproc at or under this process's hard limits. */
  ulimits?: Ulimit[];
  readOnlyRootFs?: boolean;
  /** The container's name; defaults to `peerway-<deployment>-<allocation>`. */
  name?: string;
  /** Seconds between SIGTERM and SIGKILL on stop. */
  stopTimeoutS?: number;
}

/** A container as the engine reports it, with Peerway's labels read back. */
export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  /** null when one of the three Peerway labels is missing. */
  peerway: PeerwayLabels | null;
  labels: Record<string, string>;
  /** The engine's word: created, running, exited, paused, … */
  state: string;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  /** The 127.0.0.1 port the container's port is published on, while it runs. */
  hostPort: number | null;
  startedAt: string | null;
}

/** What `watch()` reports. */
export type RuntimeEvent =
  | { type: 'started'; id: string; peerway: PeerwayLabels | null }
  | { type: 'exited'; id: string; peerway: PeerwayLabels | null; exitCode: number | null }
  | { type: 'oom'; id: string; peerway: PeerwayLabels | null }
  | { type: 'removed'; id: string; peerway: PeerwayLabels | null };

/** Reads the Peerway labels back from a container's labels. */
export function peerwayLabels(labels: Record<string, string> | undefined): PeerwayLabels | null {
  const node = labels?.[LABEL_NODE];
  const deployment = labels?.[LABEL_DEPLOYMENT];
  const allocation = labels?.[LABEL_ALLOCATION];
  if (!node || !deployment || !allocation) return null;
  return { node, deployment, allocation };
}
