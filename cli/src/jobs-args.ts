/**
 * `peerway jobs submit`'s flags turned into the body of `POST /api/jobs`,
 * and the exit code a finished wait ends with. Pure: the flags in, a body
 * or a sentence saying which flag is wrong out. The submission itself is
 * checked by the server (one schema, @peerway/protocol's); these checks are
 * only the ones the server cannot make (input that is not JSON, a number
 * flag that is no number, a label without "=").
 */
import type { JobState } from '@peerway/protocol';

/** Exit codes a script can use. */
export const JOB_EXIT = {
  /** Done; with --wait/--follow: the job succeeded. */
  ok: 0,
  /** Refused (bad flags, the server said no), or the job ended dead or cancelled. */
  failed: 1,
  /** --wait/--follow gave up after --wait-timeout with the job not finished. */
  timeout: 2,
} as const;

/** The flags of `jobs submit` as commander hands them over. */
export interface SubmitFlags {
  type: string;
  input?: string;
  priority?: string;
  require: string[];
  gpu?: string;
  memory?: string;
  service?: string;
  model: string[];
  idempotencyKey?: string;
  timeout?: string;
  maxAttempts?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** What `--input @FILE` reads: a file's text, `@-` standard input. */
export type ReadInput = (file: string) => string;

/** `--input`: JSON as it is, `@FILE` a file of JSON, `@-` JSON on standard input. */
export function parseInput(raw: string, read: ReadInput): Parsed<unknown> {
  let text = raw;
  let from = '--input';
  if (raw.startsWith('@')) {
    const file = raw.slice(1);
    if (!file) return { ok: false, message: '--input @: name a file after "@" (or @- for stdin)' };
    from = file === '-' ? 'standard input' : file;
    try {
      text = read(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return { ok: false, message: `--input ${raw}: cannot read ${file}: ${code}` };
    }
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    const hint = raw.startsWith('@') ? '' : ` (JSON, or @FILE for a file of JSON)`;
    return { ok: false, message: `${from} is not JSON: ${(err as Error).message}${hint}` };
  }
}

/** An integer flag, or why it is none. */
export function parseIntFlag(flag: string, raw: string): Parsed<number> {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n))
    return { ok: false, message: `${flag} ${raw}: give a whole number` };
  return { ok: true, value: n };
}

/** `--require LABEL=VALUE`, repeated, as a label map (a label given twice is refused). */
export function parseLabels(pairs: readonly string[]): Parsed<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at <= 0)
      return {
        ok: false,
        message: `--require ${p}: write LABEL=VALUE, e.g. --require region=home`,
      };
    const key = p.slice(0, at);
    if (key in labels) return { ok: false, message: `--require ${key} is given twice` };
    labels[key] = p.slice(at + 1);
  }
  return { ok: true, value: labels };
}

/** The body of `POST /api/jobs` for these flags; stdin/files through `read`. */
export function submissionBody(f: SubmitFlags, read: ReadInput): Parsed<Record<string, unknown>> {
  const body: Record<string, unknown> = { type: f.type };
  if (f.input !== undefined) {
    const input = parseInput(f.input, read);
    if (!input.ok) return input;
    body.input = input.value;
  }
  const ints: [string, string | undefined, string][] = [
    ['--priority', f.priority, 'priority'],
    ['--timeout', f.timeout, 'timeoutS'],
    ['--max-attempts', f.maxAttempts, 'maxAttempts'],
  ];
  for (const [flag, raw, field] of ints) {
    if (raw === undefined) continue;
    const n = parseIntFlag(flag, raw);
    if (!n.ok) return n;
    body[field] = n.value;
  }
  if (f.idempotencyKey !== undefined) body.idempotencyKey = f.idempotencyKey;
  const requirements: Record<string, unknown> = {};
  if (f.service !== undefined) requirements.service = f.service;
  if (f.gpu !== undefined) {
    const n = parseIntFlag('--gpu', f.gpu);
    if (!n.ok) return n;
    requirements.gpu = n.value;
  }
  // a size as written ("8GiB"): the server's schema knows the units and says which it takes
  if (f.memory !== undefined) requirements.memory = f.memory;
  if (f.model.length) requirements.models = f.model;
  const labels = parseLabels(f.require);
  if (!labels.ok) return labels;
  if (Object.keys(labels.value).length) requirements.labels = labels.value;
  if (Object.keys(requirements).length) body.requirements = requirements;
  return { ok: true, value: body };
}

/** The flag that sets a submission's field, to name it beside the server's error. */
const FLAG_OF: [RegExp, string][] = [
  [/^type$/, '--type'],
  [/^input(\.|\[|$)/, '--input'],
  [/^priority$/, '--priority'],
  [/^idempotencyKey$/, '--idempotency-key'],
  [/^timeoutS$/, '--timeout'],
  [/^maxAttempts$/, '--max-attempts'],
  [/^requirements\.service$/, '--service'],
  [/^requirements\.gpu$/, '--gpu'],
  [/^requirements\.memory$/, '--memory'],
  [/^requirements\.models/, '--model'],
  [/^requirements\.labels/, '--require'],
];

/** `requirements.memory: …` → `requirements.memory (--memory): …`. */
export function describeError(e: { path: string; message: string }): string {
  const flag = FLAG_OF.find(([re]) => re.test(e.path))?.[1];
  if (!e.path) return e.message;
  return `${e.path}${flag ? ` (${flag})` : ''}: ${e.message}`;
}

/** The exit code once a waited-for job reached `state` (null: it has not finished). */
export function exitFor(state: JobState): number | null {
  switch (state) {
    case 'succeeded':
      return JOB_EXIT.ok;
    case 'dead':
    case 'cancelled':
      return JOB_EXIT.failed;
    case 'queued':
    case 'leased':
    case 'running':
    case 'failed': // will retry: the wait goes on
      return null;
    default: {
      const never: never = state;
      return never;
    }
  }
}

/** `--wait-timeout S` in ms (undefined: wait for as long as it takes). */
export function parseWaitTimeout(raw: string | undefined): Parsed<number | undefined> {
  if (raw === undefined) return { ok: true, value: undefined };
  const s = Number(raw);
  if (!(s > 0) || !Number.isFinite(s))
    return { ok: false, message: `--wait-timeout ${raw}: give seconds, e.g. 120` };
  return { ok: true, value: s * 1000 };
}
