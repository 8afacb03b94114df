/** Store records as the API shows them (the protocol's JobView and WorkerView). */
import type { JobView, WorkerView } from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import type { JobRecord } from '../store/jobs';
import type { WorkerInfo } from './signals';

/** The job as its submitter sees it: nodes by short ID, files by their URL. */
export function jobView(j: JobRecord, warnings?: string[]): JobView {
  const attempts = j.attempts.map((a) => ({
    attempt: a.attempt,
    node: shortIdOf(a.nodeId),
    leasedAt: a.leasedAt,
    ...(a.startedAt !== undefined ? { startedAt: a.startedAt } : {}),
    ...(a.endedAt !== undefined ? { endedAt: a.endedAt } : {}),
    ...(a.outcome !== undefined ? { outcome: a.outcome } : {}),
    ...(a.error !== undefined ? { error: a.error } : {}),
  }));
  const last = attempts.at(-1);
  return {
    id: j.id,
    type: j.type,
    state: j.state,
    priority: j.priority,
    requirements: j.requirements,
    input: j.input,
    ...(j.output !== undefined ? { output: j.output } : {}),
    files: j.files.map((f) => ({
      name: f.name,
      bytes: f.bytes,
      contentType: f.contentType,
      url: `/api/jobs/${encodeURIComponent(j.id)}/files/${encodeURIComponent(f.name)}`,
    })),
    ...(j.error !== undefined ? { error: j.error } : {}),
    attempts,
    ...(last ? { node: last.node } : {}),
    maxAttempts: j.maxAttempts,
    timeoutS: j.timeoutS,
    backoff: j.backoff,
    ...(j.idempotencyKey !== undefined ? { idempotencyKey: j.idempotencyKey } : {}),
    ...(j.progress !== undefined ? { progress: j.progress } : {}),
    ...(j.retryAt !== undefined && j.state === 'failed' ? { retryAt: j.retryAt } : {}),
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
    ...(warnings && warnings.length > 0 ? { warnings } : {}),
  };
}

/** A worker as `GET /api/workers` shows it. */
export function workerView(w: WorkerInfo, online: boolean): WorkerView {
  return {
    node: w.shortId,
    name: w.name,
    online,
    concurrency: w.concurrency,
    running: w.jobs.length,
    connectors: w.connectors.map((c) => ({
      type: c.type,
      services: c.services,
      models: c.models,
      images: c.images,
    })),
    labels: w.resources?.labels ?? {},
    gpus: w.resources?.capacity.gpus.length ?? 0,
    memoryBytes: w.resources?.capacity.memoryBytes ?? 0,
    jobs: w.jobs,
    pool: w.grants === '*' ? 'public' : w.grants.length > 0 ? 'shared' : 'owner',
  };
}

/** Whether the worker may run jobs of this submitter (its owner's, a grant's, or everyone's). */
export function mayRunFor(w: Pick<WorkerInfo, 'ownerId' | 'grants'>, submitterId: string): boolean {
  if (w.ownerId === null) return false;
  return w.ownerId === submitterId || w.grants === '*' || w.grants.includes(submitterId);
}
