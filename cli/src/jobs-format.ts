/**
 * How `peerway jobs` prints jobs for a person: the list's rows, one job's
 * page (attempts, files with their URLs, output), and one line per event
 * of a job being followed. Pure: views in, lines out.
 */
import {
  formatBytes,
  progressText as protocolProgressText,
  requirementParts,
  type JobEvent,
  type JobRequirements,
  type JobView,
} from '@peerway/protocol';

/** Output longer than this many lines is cut in `show` (`--json` has all of it). */
export const OUTPUT_LINES_SHOWN = 40;

/** `2026-12-02 04:31:07` (UTC): sortable, and the same on every machine. */
export const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** `service=render gpu>=1 memory>=8 GiB model=sdxl region=home`, or `-` for none. */
export function requirementsText(r: JobRequirements): string {
  return requirementParts(r).join(' ') || '-';
}

/** `3/10 rendering`, `40%`, or the message alone. */
export function progressText(p: { value?: number; max?: number; message?: string }): string {
  return protocolProgressText(p) || '(no detail)';
}

/** The list's table rows, header first. */
export function listRows(jobs: readonly JobView[]): string[][] {
  return [
    ['ID', 'TYPE', 'STATE', 'PRIORITY', 'NODE', 'ATTEMPTS', 'CREATED'],
    ...jobs.map((j) => [
      j.id,
      j.type,
      j.state,
      String(j.priority),
      j.node ?? '-',
      `${j.attempts.length}/${j.maxAttempts}`,
      when(j.createdAt),
    ]),
  ];
}

/** An absolute URL for a path the server gave (`/api/jobs/…/files/…`). */
export const absolute = (server: string, url: string) =>
  /^https?:\/\//.test(url) ? url : `${server}${url.startsWith('/') ? '' : '/'}${url}`;

/** One job for a person: facts, attempts, files (with URLs on `server`), output. */
export function jobLines(
  j: JobView,
  server: string,
  table: (rows: string[][]) => string[],
): string[] {
  const out = [
    `${j.id}  ${j.type}  ${j.state}`,
    `  priority   ${j.priority}`,
    `  requires   ${requirementsText(j.requirements)}`,
    `  node       ${j.node ?? '-'}`,
    `  attempts   ${j.attempts.length} of ${j.maxAttempts} (timeout ${j.timeoutS} s each)`,
    `  created    ${when(j.createdAt)}`,
    `  updated    ${when(j.updatedAt)}`,
  ];
  if (j.idempotencyKey !== undefined) out.push(`  key        ${j.idempotencyKey}`);
  if (j.progress) out.push(`  progress   ${progressText(j.progress)}`);
  if (j.retryAt !== undefined) out.push(`  retry at   ${when(j.retryAt)}`);
  if (j.error !== undefined) out.push(`  error      ${j.error}`);
  for (const w of j.warnings ?? []) out.push(`  warning    ${w}`);
  if (j.attempts.length) {
    out.push('', 'Attempts:');
    out.push(
      ...table([
        ['#', 'NODE', 'LEASED', 'STARTED', 'ENDED', 'OUTCOME', 'ERROR'],
        ...j.attempts.map((a) => [
          String(a.attempt),
          a.node,
          when(a.leasedAt),
          a.startedAt !== undefined ? when(a.startedAt) : '-',
          a.endedAt !== undefined ? when(a.endedAt) : '-',
          a.outcome ?? '-',
          a.error ?? '',
        ]),
      ]).map((l) => `  ${l}`),
    );
  }
  if (j.files.length) {
    out.push('', 'Files:');
    out.push(
      ...table([
        ['NAME', 'SIZE', 'TYPE', 'URL'],
        ...j.files.map((f) => [
          f.name,
          formatBytes(f.bytes),
          f.contentType,
          absolute(server, f.url),
        ]),
      ]).map((l) => `  ${l}`),
    );
  }
  if (j.output !== undefined) {
    const text = JSON.stringify(j.output, null, 2).split('\n');
    out.push('', 'Output:', ...text.slice(0, OUTPUT_LINES_SHOWN).map((l) => `  ${l}`));
    if (text.length > OUTPUT_LINES_SHOWN)
      out.push(`  … ${text.length - OUTPUT_LINES_SHOWN} more lines (--json shows all)`);
  }
  return out;
}

/** One line for an event of a followed job: a state change or progress. */
export function eventLine(e: JobEvent): string {
  const t = when(e.at).slice(11);
  if (e.type === 'progress') return `${t}  progress  ${progressText(e)} (attempt ${e.attempt})`;
  const where = [
    e.attempt !== undefined ? `attempt ${e.attempt}` : '',
    e.node !== undefined ? `on ${e.node}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return `${t}  ${e.state}${where ? `  ${where}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
}

/** The last line of a wait: how the job ended, with its error or where its output is. */
export function endLine(j: JobView): string {
  switch (j.state) {
    case 'succeeded':
      return `${j.id} succeeded${j.node ? ` on ${j.node}` : ''}${j.files.length ? ` (${j.files.length} files: peerway jobs show ${j.id})` : ''}`;
    case 'dead':
      return `${j.id} is dead after ${j.attempts.length} attempts${j.error ? `: ${j.error}` : ''}`;
    case 'cancelled':
      return `${j.id} was cancelled`;
    default:
      return `${j.id} is ${j.state}`;
  }
}

/**
 * Which lines of a followed job to print: a state once per attempt (the
 * stream starts with the state the server read when it subscribed, which
 * may repeat the one printed before it opened), and nothing older than the
 * last line printed.
 */
export class FollowedLines {
  private readonly seen = new Set<string>();
  private lastAt = 0;

  /** Whether to print the line of `e`; remembers it when so. */
  take(e: JobEvent): boolean {
    const key =
      e.type === 'state' ? `${e.state}/${e.attempt ?? 0}` : `progress/${JSON.stringify(e)}`;
    if (this.seen.has(key) || e.at < this.lastAt) return false;
    this.seen.add(key);
    this.lastAt = e.at;
    return true;
  }
}
