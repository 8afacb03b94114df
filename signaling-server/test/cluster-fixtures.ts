/**
 * Fixtures for the cluster tests: a fake agent that speaks the cluster's
 * part of the agent protocol (resources, allocations, allocation-status)
 * over a real WebSocket, and a few specs.
 */
import type {
  AllocationAssignment,
  NodeResources,
  ReplicaState,
  ServerToAgent,
} from '@peerway/protocol';
import type { NodeIdentity } from '@peerway/protocol/node';
import { FakeAgent } from './helpers';
import type { PeerwayServer } from '../src/server';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

/** A node's report: 4 cores and 4 GiB with Podman, deployments on, unless told otherwise. */
export function report(
  over: {
    cpuCores?: number;
    memoryBytes?: number;
    deployments?: boolean;
    labels?: Record<string, string>;
    runtime?: boolean;
  } = {},
): NodeResources {
  return {
    capacity: {
      cpuCores: over.cpuCores ?? 4,
      memoryBytes: over.memoryBytes ?? 4 * GiB,
      diskFreeBytes: 50 * GiB,
      gpus: [],
      os: 'linux',
      arch: 'x64',
      runtime: over.runtime === false ? null : { name: 'podman', version: '4.3.1' },
    },
    offer: { cpuCores: null, memoryBytes: null },
    labels: over.labels ?? {},
    deployments: over.deployments ?? true,
  };
}

type Allocations = Extract<ServerToAgent, { type: 'allocations' }>;

/** An agent that reports resources and receives its desired set of replicas. */
export class ClusterAgent extends FakeAgent {
  /** `identity`: the node's key pair (a new one unless given, e.g. for the same node again). */
  constructor(server: PeerwayServer, identity?: NodeIdentity) {
    super(server, identity);
  }

  /** Connects claimed by `token`'s user, reports `resources`, and returns its first set. */
  async join(token: string, resources: NodeResources = report()): Promise<AllocationAssignment[]> {
    const { reply } = await this.handshake({ token });
    if (reply.type !== 'welcome') throw new Error(`expected welcome, got ${reply.type}`);
    this.send({ type: 'resources', resources });
    return (await this.nextOf('allocations')).allocations;
  }

  /** The next set that satisfies `ok` (sets that do not are skipped). */
  async setWhere(
    ok: (list: AllocationAssignment[]) => boolean,
    timeoutMs = 10_000,
  ): Promise<AllocationAssignment[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m: Allocations = await this.nextOf('allocations', Math.max(1, deadline - Date.now()));
      if (ok(m.allocations)) return m.allocations;
    }
  }

  /** Reports one replica's state. */
  status(id: string, state: ReplicaState, extra: { reason?: string; exitCode?: number } = {}) {
    this.send({ type: 'allocation-status', allocations: [{ id, state, ...extra }] });
  }

  /** Announces services (a replica's name once it runs). */
  announce(...names: string[]) {
    this.send({ type: 'services', services: names.map((name) => ({ name, public: false })) });
  }
}

/** Polls `fn` until it answers something truthy. */
export async function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A spec for a small web app. */
export function spec(name: string, over: Record<string, unknown> = {}) {
  return {
    name,
    image: '127.0.0.1:5000/peerway-test/web:1',
    port: 8080,
    replicas: 1,
    resources: { cpu: 0.5, memory: '256MiB' },
    ...over,
  };
}

export const uniqueName = (prefix = 'app') => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
