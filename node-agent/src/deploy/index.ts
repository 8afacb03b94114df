/**
 * Deployments on this node, put together for `peerway-agent run`: the
 * container engine (opened, or only looked for when deployments are off),
 * the resources report, and the reconciler that runs what the server
 * assigns and serves it through the agent.
 */
import type { Logger } from 'pino';
import type { AgentToServer, AllocationAssignment } from '@peerway/protocol';
import { nodeCapacity, openRuntime, type OpenedRuntime } from '../runtime';
import type { DeployedService } from '../agent';
import { Reconciler, type ReconcilerOptions } from './reconciler';
import { ResourceReporter, nodeResources } from './report';
import type { DeploySettings } from './settings';

export { Reconciler, DEPLOYMENTS_OFF, healthOf } from './reconciler';
export type { ReconcilerOptions } from './reconciler';
export { ResourceReporter, nodeResources, reportChanged } from './report';
export * from './settings';

/** What the deployments need of the agent. */
export interface DeployAgent {
  send(m: AgentToServer): void;
  serveDeployments(list: readonly DeployedService[]): void;
}

export interface DeployNodeOptions {
  settings: DeploySettings;
  /** The agent's home: free disk is measured there, and its own Podman socket lives there. */
  stateDir: string;
  /** This node's short ID. */
  node: string;
  extraLabels?: Record<string, string>;
  /** The agent, once made (messages before it are dropped). */
  agent: () => DeployAgent | null;
  log: Logger;
  /** For tests: the reconciler's health checks. */
  health?: ReconcilerOptions['health'];
}

/** The deployments side of one running agent. */
export class DeployNode {
  private constructor(
    readonly runtime: OpenedRuntime,
    readonly reconciler: Reconciler,
    readonly reporter: ResourceReporter,
  ) {}

  /**
   * Opens the container engine (with deployments off: only one already
   * running; it starts none) and makes the reconciler and reporter.
   */
  static async open(o: DeployNodeOptions): Promise<DeployNode> {
    const runtime = await openRuntime({
      stateDir: o.stateDir,
      allowedRegistries: o.settings.registries,
      startPodman: o.settings.enabled,
      log: o.log.child({ module: 'runtime' }),
    });
    if (o.settings.enabled && !runtime.runtime)
      o.log.warn(
        { reason: runtime.detection.ok ? '' : runtime.detection.reason },
        'no container runtime',
      );
    const reconciler = new Reconciler({
      runtime: runtime.runtime,
      ...(runtime.detection.ok ? {} : { runtimeProblem: runtime.detection.reason }),
      node: o.node,
      settings: o.settings,
      ...(o.extraLabels ? { extraLabels: o.extraLabels } : {}),
      ...(o.health ? { health: o.health } : {}),
      report: (allocations) => o.agent()?.send({ type: 'allocation-status', allocations }),
      serve: (list) => o.agent()?.serveDeployments(list),
      log: o.log.child({ module: 'deploy' }),
    });
    const reporter = new ResourceReporter({
      measure: async () =>
        nodeResources(
          await nodeCapacity({
            dataDir: o.stateDir,
            runtime: runtime.runtime ? await runtime.runtime.detect() : runtime.detection,
            log: o.log,
          }),
          o.settings,
        ),
      send: (resources) => o.agent()?.send({ type: 'resources', resources }),
      log: o.log,
    });
    reporter.start();
    return new DeployNode(runtime, reconciler, reporter);
  }

  /** The server welcomed the node: its resources, then every replica's state. */
  async connected(): Promise<void> {
    await this.reporter.connected();
    this.reconciler.reportAll();
  }

  /** Replicas in the server's last set: what a drain waits to see moved. */
  private held = 0;
  private emptyWaiters: (() => void)[] = [];

  /** The server's whole desired set. */
  allocations(list: readonly AllocationAssignment[]): Promise<void> {
    this.held = list.length;
    if (this.held === 0) for (const w of this.emptyWaiters.splice(0)) w();
    return this.reconciler.apply(list);
  }

  /** Replicas the server wants here now. */
  get replicas(): number {
    return this.held;
  }

  /**
   * Resolves once the server's set for this node is empty (a draining
   * node's replicas run elsewhere and it stopped them here), or after
   * `timeoutMs`; with the replicas still wanted here then.
   */
  whenEmpty(timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(this.held);
      };
      const timer = setTimeout(done, timeoutMs);
      if (this.held === 0) done();
      else this.emptyWaiters.push(done);
    });
  }

  /** Leaves the containers running (the next run adopts them) and stops what this opened. */
  async close(): Promise<void> {
    this.reporter.stop();
    this.reconciler.detach();
    await this.runtime.close();
  }
}
