/**
 * Jobs on this node, put together for `peerway-agent run --jobs`: the
 * connectors its owner configured (each checked against what the node
 * has: an http connector's services must be declared ones) and the worker
 * that takes leases from the server and runs them (./worker.ts).
 */
import type { Logger } from 'pino';
import { PeerwayError, type AgentToServer, type NodeResources } from '@peerway/protocol';
import type { AgentJobs } from '../agent';
import type { ServiceConfig } from '../home';
import { HttpConnector } from './connectors/http';
import { SimulationConnector } from './connectors/simulation';
import type { Connector } from './connectors/types';
import { ServerLeaseHttp, type LeaseHttp } from './lease-http';
import type { JobSettings } from './settings';
import { Worker } from './worker';
import { ComfyUiConnector } from './connectors/comfyui';
import { ContainerConnector } from './connectors/container';
import { openRuntime, type OpenedRuntime } from '../runtime/podman';
import { dockerFor } from '../runtime/podman';

export * from './settings';
export { Worker } from './worker';
export type { WorkerOptions, JobLease, JobServerMessage } from './worker';
export { JobError } from './errors';
export type { Connector, JobContext, JobFile, JobOutcome } from './connectors/types';
export { SimulationConnector } from './connectors/simulation';
export { HttpConnector } from './connectors/http';
export { ComfyUiConnector } from './connectors/comfyui';
export { ContainerConnector } from './connectors/container';

/** Makes what the container and comfyui connectors need, only when they are configured. */
export interface ConnectorFactories {
  container?: (s: NonNullable<JobSettings['connectors']['container']>) => Promise<Connector>;
  comfyui?: (s: NonNullable<JobSettings['connectors']['comfyui']>) => Connector;
}

/** The connectors of `settings`; throws in words when one cannot be made. */
export async function buildConnectors(
  settings: JobSettings,
  services: readonly Pick<ServiceConfig, 'name' | 'target'>[],
  factories: ConnectorFactories = {},
): Promise<Connector[]> {
  const out: Connector[] = [];
  const c = settings.connectors;
  if (c.simulation) out.push(new SimulationConnector());
  if (c.http) {
    const map = new Map<string, string>();
    for (const name of c.http.services) {
      const s = services.find((x) => x.name === name);
      if (!s)
        throw new PeerwayError(
          'bad_request',
          `the http connector may call "${name}", but this node declares no such service (declared: ${services.map((x) => x.name).join(', ') || 'none'}): declare it with --service ${name}=TARGET or \`peerway-agent expose\``,
        );
      map.set(name, s.target);
    }
    out.push(new HttpConnector({ services: map, maxBodyBytes: c.http.maxBodyBytes }));
  }
  if (c.comfyui) {
    if (!factories.comfyui)
      throw new PeerwayError('bad_request', 'the comfyui connector is not available');
    out.push(factories.comfyui(c.comfyui));
  }
  if (c.container) {
    if (!factories.container)
      throw new PeerwayError('bad_request', 'the container connector is not available');
    out.push(await factories.container(c.container));
  }
  return out;
}

export interface JobsNodeOptions {
  settings: JobSettings;
  connectors: Connector[];
  serverUrl: string;
  /** The agent, once made (messages before it are dropped). */
  send: (m: AgentToServer) => void;
  resources: () => NodeResources | null;
  log: Logger;
  http?: LeaseHttp;
  /** Called once the worker stopped (closes what opening it started). */
  onStop?: () => Promise<void> | void;
}

/** The worker side of one running agent, as the agent sees it. */
export class JobsNode implements AgentJobs {
  readonly worker: Worker;

  constructor(private readonly o: JobsNodeOptions) {
    this.worker = new Worker({
      connectors: o.connectors,
      concurrency: o.settings.concurrency,
      send: o.send,
      http: o.http ?? new ServerLeaseHttp(o.serverUrl),
      resources: o.resources,
      log: o.log.child({ module: 'jobs' }),
    });
  }

  connected(): Promise<void> {
    return this.worker.connected();
  }

  disconnected(): void {
    this.worker.disconnected();
  }

  message(m: Parameters<AgentJobs['message']>[0]): void {
    this.worker.message(m);
  }

  stop(): void {
    this.worker.stop();
    for (const c of this.o.connectors) void c.close?.();
    void this.o.onStop?.();
  }
}

export interface OpenJobsNodeOptions {
  settings: JobSettings;
  services: readonly Pick<ServiceConfig, 'name' | 'target'>[];
  serverUrl: string;
  /** This node's short ID (the container connector's labels). */
  node: string;
  /** The agent's home: a Podman service of its own lives there (shared with deployments). */
  stateDir: string;
  send: (m: AgentToServer) => void;
  resources: () => NodeResources | null;
  log: Logger;
}

/**
 * The connectors of `settings` and the worker, for `peerway-agent run
 * --jobs`. The container connector opens the container engine (the one
 * deployments use, or Podman's service started in the agent's home);
 * without one it refuses to start, in words.
 */
export async function openJobsNode(o: OpenJobsNodeOptions): Promise<JobsNode> {
  let opened: OpenedRuntime | null = null;
  const connectors = await buildConnectors(o.settings, o.services, {
    comfyui: (s) => new ComfyUiConnector({ url: s.url }),
    container: async (s) => {
      opened = await openRuntime({
        stateDir: o.stateDir,
        allowedRegistries: s.registries,
        log: o.log.child({ module: 'runtime' }),
      });
      if (!opened.runtime)
        throw new PeerwayError(
          'bad_request',
          `the container connector needs a container engine: ${opened.detection.ok ? 'none found' : opened.detection.reason}`,
        );
      return new ContainerConnector({
        settings: s,
        runtime: opened.runtime,
        docker: dockerFor(opened.where),
        node: o.node,
      });
    },
  });
  return new JobsNode({
    settings: o.settings,
    connectors,
    serverUrl: o.serverUrl,
    send: o.send,
    resources: o.resources,
    log: o.log,
    onStop: () => (opened as OpenedRuntime | null)?.close(),
  });
}
