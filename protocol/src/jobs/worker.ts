/**
 * What a worker (a node run with `peerway-agent run --jobs`) can do, and
 * the one rule that decides whether it may take a job: the job's type is
 * one of its connectors, and every requirement is met by the connector's
 * report or the node's resources. The server's store matches with this
 * rule (or an index built on `requirementKey`), the agent checks it again
 * on every lease it gets.
 */
import { z } from 'zod';
import { SERVICE_NAME_RE } from '../names';
import type { NodeResources } from '../deploy/resources';
import { JOB_TYPES, MAX_MODEL_NAME_CHARS, type JobRequirements, type JobType } from './spec';

export const MAX_WORKER_CONCURRENCY = 256;
export const MAX_CONNECTOR_MODELS = 1024;

/** One connector as the agent reports it. */
export const WorkerConnectorSchema = z.strictObject({
  type: z.enum(JOB_TYPES),
  /** `http`: the node's declared services this connector may call. */
  services: z.array(z.string().regex(SERVICE_NAME_RE)).max(64).default([]),
  /** `comfyui`: the models (checkpoints, LoRAs...) it has. */
  models: z
    .array(z.string().min(1).max(MAX_MODEL_NAME_CHARS))
    .max(MAX_CONNECTOR_MODELS)
    .default([]),
  /** `container`: the image patterns it may run (`registry/name:*`, exact refs). */
  images: z.array(z.string().min(1).max(512)).max(64).default([]),
});
export type WorkerConnector = z.infer<typeof WorkerConnectorSchema>;

export const WorkerCapabilitiesSchema = z.strictObject({
  /** Jobs the node runs at once. */
  concurrency: z.number().int().min(1).max(MAX_WORKER_CONCURRENCY),
  connectors: z.array(WorkerConnectorSchema).min(1).max(JOB_TYPES.length),
});
export type WorkerCapabilities = z.infer<typeof WorkerCapabilitiesSchema>;

/** A worker as the matching rule sees it: its connectors plus its node's report. */
export interface WorkerProfile {
  connectors: readonly WorkerConnector[];
  /** The node's last `resources` report; null before it sent one. */
  resources: NodeResources | null;
}

/** `registry/name:*` matches any tag of that image; other patterns match exactly. */
export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith(':*') ? image.startsWith(p.slice(0, -1)) : p === image));
}

/**
 * Why this worker cannot take a job of `type` with `req` (null: it can).
 * `image` is a container job's image. In words, for the submitter's
 * warnings and the dashboard.
 */
export function unmetRequirement(
  type: JobType,
  req: JobRequirements,
  worker: WorkerProfile,
  image?: string,
): string | null {
  const c = worker.connectors.find((x) => x.type === type);
  if (!c) return `has no ${type} connector`;
  if (req.service !== undefined && !c.services.includes(req.service)) {
    return `does not serve "${req.service}"`;
  }
  const missing = req.models.find((m) => !c.models.includes(m));
  if (missing !== undefined) return `does not have model "${missing}"`;
  if (type === 'container' && image !== undefined && !imageAllowed(image, c.images)) {
    return `does not allow image ${image}`;
  }
  const r = worker.resources;
  if ((req.gpu ?? 0) > 0 && (r?.capacity.gpus.length ?? 0) < req.gpu!) {
    return `has ${r?.capacity.gpus.length ?? 0} GPUs, needs ${req.gpu}`;
  }
  if (req.memory !== undefined && (r?.capacity.memoryBytes ?? 0) < req.memory) {
    return `has less memory than the ${req.memory} bytes needed`;
  }
  for (const [k, v] of Object.entries(req.labels)) {
    if (r?.labels[k] !== v) return `label ${k} is not "${v}"`;
  }
  return null;
}

/**
 * A canonical string for a job's type and requirements (and image): jobs
 * with equal keys are matched as one group, so a pull checks each group
 * once instead of each waiting job.
 */
export function requirementKey(type: JobType, req: JobRequirements, image?: string): string {
  const labels = Object.keys(req.labels)
    .sort()
    .map((k) => [k, req.labels[k]]);
  return JSON.stringify([
    type,
    req.service ?? null,
    req.gpu ?? 0,
    req.memory ?? 0,
    [...req.models].sort(),
    labels,
    type === 'container' ? (image ?? null) : null,
  ]);
}

/** The inverse of requirementKey, for a store that keeps only the key. */
export function parseRequirementKey(key: string): {
  type: JobType;
  requirements: JobRequirements;
  image?: string;
} {
  const [type, service, gpu, memory, models, labels, image] = JSON.parse(key) as [
    JobType,
    string | null,
    number,
    number,
    string[],
    [string, string][],
    string | null,
  ];
  return {
    type,
    requirements: {
      ...(service !== null ? { service } : {}),
      ...(gpu > 0 ? { gpu } : {}),
      ...(memory > 0 ? { memory } : {}),
      models,
      labels: Object.fromEntries(labels),
    },
    ...(image !== null ? { image } : {}),
  };
}
