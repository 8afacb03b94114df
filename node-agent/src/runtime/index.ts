/**
 * The agent's container runtime: an engine over the Docker Engine API
 * (Docker, or Podman's service), replicas from allocation to healthy
 * container, and the node's capacity report.
 */
export * from './types';
export * from './errors';
export {
  parseImageRef,
  assertRegistryAllowed,
  normaliseRegistryHost,
  isLoopbackRegistry,
} from './image-ref';
export type { ImageRef } from './image-ref';
export { DockerRuntime } from './docker-api';
export type { ContainerRuntime, DockerRuntimeOptions, LabelFilter, Watch } from './docker-api';
export { openRuntime, startPodmanService, defaultPodmanFlags, dockerFor } from './podman';
export type { OpenRuntimeOptions, OpenedRuntime, PodmanService } from './podman';
export { Replica } from './replica';
export type { ReplicaOptions, ReplicaTimings } from './replica';
export { DEFAULT_HEALTH, HealthMonitor, probeHttp, probeName, probeTcp } from './health';
export type { HealthSpec, HealthState, ProbeResult } from './health';
export { defaultUlimits } from './ulimits';
export { nodeCapacity, parseNvidiaSmi, detectGpus } from './resources';
export type { NodeCapacity, GpuInfo } from './resources';
