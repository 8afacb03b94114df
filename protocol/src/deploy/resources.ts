/**
 * What an agent reports about its node: what the machine has, what its
 * owner offers to deployments, its labels and whether it takes
 * deployments at all. The server's scheduler reads it (free = the smaller
 * of capacity and offer, less what is allocated there).
 */
import { z } from 'zod';
import { LABEL_KEY_RE, LABEL_VALUE_RE, MAX_LABELS } from './labels';

const MAX_GPUS_REPORTED = 64;
const shortText = z.string().min(1).max(128);
const bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const GpuSchema = z.object({
  /** As `nvidia-smi` names it, e.g. "NVIDIA GeForce RTX 3060". */
  model: shortText,
  memoryBytes: bytes,
});

export const ContainerRuntimeSchema = z.object({
  /** `podman` or `docker` (the engine behind the Docker API the agent talks to). */
  name: shortText,
  version: shortText,
});

export const NodeCapacitySchema = z.object({
  /** Logical CPUs (`os.availableParallelism()`). */
  cpuCores: z.number().positive().max(4096),
  memoryBytes: bytes,
  /** Free space where the container engine keeps images and containers. */
  diskFreeBytes: bytes,
  gpus: z.array(GpuSchema).max(MAX_GPUS_REPORTED),
  /** `process.platform`, e.g. linux. */
  os: shortText,
  /** `process.arch`, e.g. x64, arm64. */
  arch: shortText,
  /** null: no container engine answered, so the node cannot run deployments. */
  runtime: ContainerRuntimeSchema.nullable(),
});

/** The owner's caps on what deployments may use (`--deploy-cpu`, `--deploy-memory`); null: no cap. */
export const NodeOfferSchema = z.object({
  cpuCores: z.number().positive().max(4096).nullable(),
  memoryBytes: bytes.nullable(),
});

export const NodeLabelsSchema = z
  .record(z.string().regex(LABEL_KEY_RE), z.string().regex(LABEL_VALUE_RE))
  .refine((l) => Object.keys(l).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`);

export const NodeResourcesSchema = z.object({
  capacity: NodeCapacitySchema,
  offer: NodeOfferSchema,
  labels: NodeLabelsSchema,
  /** The owner turned deployments on (`peerway-agent run --deployments`). */
  deployments: z.boolean(),
});

export type Gpu = z.infer<typeof GpuSchema>;
export type ContainerRuntime = z.infer<typeof ContainerRuntimeSchema>;
export type NodeCapacity = z.infer<typeof NodeCapacitySchema>;
export type NodeOffer = z.infer<typeof NodeOfferSchema>;
export type NodeResources = z.infer<typeof NodeResourcesSchema>;

/** What a node can give deployments in all: the smaller of capacity and offer. */
export interface DeployableResources {
  cpuMillis: number;
  memoryBytes: number;
  gpu: number;
}

/** The part of a node deployments may use, before anything is allocated. */
export function deployableResources(r: NodeResources): DeployableResources {
  const cpuCores = Math.min(r.capacity.cpuCores, r.offer.cpuCores ?? Infinity);
  const memoryBytes = Math.min(r.capacity.memoryBytes, r.offer.memoryBytes ?? Infinity);
  return {
    cpuMillis: Math.floor(cpuCores * 1000),
    memoryBytes,
    gpu: r.capacity.gpus.length,
  };
}
