/** Which replica takes a new session: a pure choice over the online candidates. */

/** An online agent that could take a session, here or on another instance. */
export interface Candidate {
  nodeId: string;
  shortId: string;
  name: string;
  /** Undefined when this instance holds the agent. */
  instance: string | undefined;
  /** Sessions it reported, plus those sent to it since its last report. */
  sessions: number;
  cpu: number;
}

/**
 * The least-loaded candidate (fewest sessions, then least CPU; ties keep
 * their order), leaving out nodes on the client's avoid list (short IDs)
 * unless nothing else is left; null when there is none at all.
 */
export function leastLoaded(
  candidates: readonly Candidate[],
  avoid: ReadonlySet<string>,
): Candidate | null {
  const preferred = candidates.filter((a) => !avoid.has(a.shortId));
  const pool = preferred.length > 0 ? preferred : [...candidates];
  pool.sort((a, b) => a.sessions - b.sessions || a.cpu - b.cpu);
  return pool[0] ?? null;
}
