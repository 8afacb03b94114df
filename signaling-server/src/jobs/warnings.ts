/**
 * What a submitter is told at submit when no online worker could take the
 * job now (it is still accepted and waits, unless `?strict=1`): none may
 * run their jobs at all, or none meets its requirements, with each node's
 * reason in words (the protocol's one matching rule).
 */
import { unmetRequirement, type JobRequirements, type JobType } from '@peerway/protocol';
import type { WorkerInfo } from './signals';
import { mayRunFor } from './views';

/** Reasons shown, at most. */
const MAX_REASONS = 5;

export function unmetWarnings(
  workers: readonly WorkerInfo[],
  submitterId: string,
  type: JobType,
  req: JobRequirements,
  image: string | undefined,
): string[] {
  const mine = workers.filter((w) => mayRunFor(w, submitterId));
  if (mine.length === 0)
    return [
      'no worker that may run your jobs is online (your own nodes, nodes shared with you for jobs, and the public pool run them: start one with `peerway-agent run --jobs`); the job waits for one',
    ];
  const reasons: { node: string; why: string }[] = [];
  for (const w of mine) {
    const why = unmetRequirement(
      type,
      req,
      { connectors: w.connectors, resources: w.resources },
      image,
    );
    if (why === null) return []; // one that could take it is enough
    reasons.push({ node: w.shortId, why });
  }
  const list = reasons
    .slice(0, MAX_REASONS)
    .map((r) => `node ${r.node} ${r.why}`)
    .join('; ');
  return [
    `no worker online meets its requirements now (${list}${reasons.length > MAX_REASONS ? '; …' : ''}); the job waits for one`,
  ];
}
