/**
 * Ended jobs do not stay for ever: a final job (succeeded, dead,
 * cancelled) last changed more than `--job-retention` ago (default 7 d) is
 * removed from the store with its files, as BullMQ's removeOnComplete /
 * removeOnFail do by age. Any instance may do it: the store's step is
 * atomic, and a folder already gone is fine.
 */
import type { Logger } from 'pino';
import type { JobStore } from '../store/jobs';
import type { JobFiles } from './files';

/** How often an instance looks for ended jobs past the retention. */
export const RETENTION_SWEEP_MS = 60_000;
/** Jobs removed per store call (the next batch follows at once, up to MAX_PER_SWEEP). */
const BATCH = 500;
const MAX_PER_SWEEP = 10_000;

/** Removes ended jobs last changed before `before`, with their files; how many went. */
export async function removeEndedJobs(
  store: Pick<JobStore, 'removeEndedJobs'>,
  files: Pick<JobFiles, 'removeJob'>,
  before: number,
  log: Logger,
): Promise<number> {
  let removed = 0;
  while (removed < MAX_PER_SWEEP) {
    const ids = await store.removeEndedJobs(before, BATCH);
    for (const id of ids)
      await files.removeJob(id).catch((err: unknown) => {
        log.warn({ err, job: id }, "could not remove an ended job's files");
      });
    removed += ids.length;
    if (ids.length < BATCH) break;
  }
  if (removed > 0) log.info({ removed }, 'removed ended jobs past the retention');
  return removed;
}
