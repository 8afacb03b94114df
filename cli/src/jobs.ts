/**
 * `peerway jobs`: submit a job (and wait for it), list jobs, show one (and
 * follow it), cancel, retry. `--wait` and `--follow` read the job's event
 * stream and print one line per state change or progress report; they end
 * with exit 0 when the job succeeded, 1 when it ended dead or cancelled, 2
 * when `--wait-timeout` ran out first (JOB_EXIT).
 */
import { Command, Option } from 'commander';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  FINAL_JOB_STATES,
  JOB_STATES,
  JOB_TYPES,
  type JobEvent,
  type JobView,
} from '@peerway/protocol';
import {
  JOB_EXIT,
  describeError,
  exitFor,
  parseIntFlag,
  parseWaitTimeout,
  submissionBody,
  type Parsed,
  type SubmitFlags,
} from './jobs-args';
import { FollowedLines, absolute, endLine, eventLine, jobLines, listRows } from './jobs-format';
import { SseOpenError, jobEvent, openSse, type SseEvent } from './jobs-sse';

export interface Login {
  server: string;
  token: string;
}

/** What the jobs commands use of the CLI (cli.ts): its API call, login, errors and printing. */
export interface CliKit {
  api<T>(
    method: string,
    path: string,
    body?: { text: string; type: string },
  ): Promise<{ status: number; json: T }>;
  login(): Login;
  /** An error said to the user in words (exit 1), not a stack. */
  error(message: string): Error;
  print(opts: { json?: boolean }, json: unknown, human: () => string[]): void;
  /** A line on standard output. */
  out(text: string): void;
  table(rows: string[][]): string[];
}

/** After the event stream ends without the job finishing, it is opened again after this. */
const RECONNECT_MS = 500;

const repeat = (v: string, all: string[]) => [...all, v];
const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;

function orFail<T>(kit: CliKit, r: Parsed<T>): T {
  if (!r.ok) throw kit.error(r.message);
  return r.value;
}

/** The flags of the list's next page. */
const listMore = (o: { state?: string; type?: string; limit?: string }, next: number) =>
  [
    o.state !== undefined ? `--state ${o.state}` : '',
    o.type !== undefined ? `--type ${o.type}` : '',
    o.limit !== undefined ? `--limit ${o.limit}` : '',
    `--before ${next}`,
  ]
    .filter(Boolean)
    .join(' ');

/** Reads `--input @FILE`: `-` is standard input. */
const readInput = (file: string) => readFileSync(file === '-' ? 0 : file, 'utf8');

/**
 * Follows job `id` until it finishes: its state now, then each event of its
 * stream, one line each (none with `quiet`). Resolves to the job as it
 * ended, or as it is when `timeoutMs` ran out first (`finished: false`).
 */
async function follow(
  kit: CliKit,
  id: string,
  timeoutMs: number | undefined,
  quiet: boolean,
): Promise<{ job: JobView; finished: boolean }> {
  const who = kit.login();
  const get = async () => (await kit.api<JobView>('GET', jobPath(id))).json;
  const stop = new AbortController();
  const timer = timeoutMs !== undefined ? setTimeout(() => stop.abort(), timeoutMs) : null;
  const lines = new FollowedLines();
  const say = (e: JobEvent) => {
    if (lines.take(e) && !quiet) kit.out(eventLine(e));
  };
  /** The job's state as the event its stream would send. */
  const stateOf = (j: JobView): JobEvent => ({
    type: 'state',
    state: j.state,
    at: j.updatedAt,
    ...(j.attempts.length ? { attempt: j.attempts.at(-1)!.attempt } : {}),
    ...(j.node !== undefined && j.state !== 'queued' ? { node: j.node } : {}),
    ...(j.error !== undefined && j.state !== 'succeeded' ? { reason: j.error } : {}),
  });
  try {
    let job = await get();
    say(stateOf(job));
    while (exitFor(job.state) === null && !stop.signal.aborted) {
      let events: AsyncIterable<SseEvent>;
      try {
        events = await openSse(`${who.server}${jobPath(id)}/events`, who.token, stop.signal);
      } catch (err) {
        if (stop.signal.aborted) break;
        if (err instanceof SseOpenError) throw kit.error(err.message);
        throw kit.error(`cannot follow ${id}: ${(err as Error).message}`);
      }
      let ended = false;
      for await (const raw of events) {
        const e = jobEvent(raw);
        if (!e) continue;
        say(e);
        if (e.type === 'state' && exitFor(e.state) !== null) {
          ended = true;
          break;
        }
      }
      if (stop.signal.aborted) break;
      job = await get();
      if (!ended && exitFor(job.state) === null)
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
    if (stop.signal.aborted) return { job: await get(), finished: false };
    return { job, finished: true };
  } finally {
    if (timer) clearTimeout(timer);
    stop.abort();
  }
}

/** Prints how a followed job ended and sets the exit code for it. */
function finish(
  kit: CliKit,
  r: { job: JobView; finished: boolean },
  opts: { json?: boolean },
  timeoutMs: number | undefined,
): void {
  if (opts.json) kit.out(JSON.stringify(r.job, null, 2));
  if (!r.finished) {
    console.error(
      `${r.job.id} is still ${r.job.state} after ${(timeoutMs ?? 0) / 1000} s (it goes on: peerway jobs show ${r.job.id} --follow)`,
    );
    process.exitCode = JOB_EXIT.timeout;
    return;
  }
  const line = endLine(r.job);
  if (!opts.json) {
    if (r.job.state === 'succeeded') kit.out(line);
    else console.error(line);
  }
  process.exitCode = exitFor(r.job.state) ?? JOB_EXIT.failed;
}

/** Saves the job's files in `dir`; each file's own name, never a path. */
async function download(kit: CliKit, job: JobView, dir: string): Promise<string[]> {
  const who = kit.login();
  mkdirSync(dir, { recursive: true });
  const saved: string[] = [];
  for (const f of job.files) {
    const name = basename(f.name);
    if (!name || name === '.' || name === '..' || name !== f.name)
      throw kit.error(`file name ${JSON.stringify(f.name)} is not a plain name: not saved`);
    const url = absolute(who.server, f.url);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${who.token}` },
        signal: AbortSignal.timeout(300_000),
      });
    } catch (err) {
      throw kit.error(`cannot download ${url}: ${(err as Error).message}`);
    }
    if (!res.ok) throw kit.error(`${url}: the server answered ${res.status}`);
    const path = join(dir, name);
    writeFileSync(path, Buffer.from(await res.arrayBuffer()));
    saved.push(path);
  }
  return saved;
}

/** The `jobs` command and its subcommands. */
export function jobsCommand(kit: CliKit): Command {
  const jobs = new Command('jobs').description(
    'submit jobs to the nodes that can run them, follow, list, cancel and retry them',
  );

  jobs
    .command('submit')
    .description(
      'submit a job; with --wait, follow it and exit 0 if it succeeds, 1 if it ends dead or cancelled, 2 on --wait-timeout',
    )
    .requiredOption('--type <type>', `the connector that runs it: ${JOB_TYPES.join(', ')}`)
    .option('--input <json|@file>', 'its input: JSON, @FILE (a file of JSON) or @- (stdin)')
    .option('--priority <n>', 'higher runs first (default 0); FIFO within one priority')
    .addOption(
      new Option('--require <label=value>', 'a node label the worker must have (repeat)')
        .argParser(repeat)
        .default([], 'none'),
    )
    .option('--gpu <n>', 'at least this many GPUs')
    .option('--memory <size>', 'at least this much memory on the node, e.g. 8GiB')
    .option('--service <name>', 'the node service an http job calls')
    .addOption(
      new Option('--model <name>', 'a model the worker must have loaded (repeat)')
        .argParser(repeat)
        .default([], 'none'),
    )
    .option('--idempotency-key <key>', 'submitting with the same key again makes no second job')
    .option('--timeout <seconds>', 'how long one attempt may run (default 600)')
    .option('--max-attempts <n>', 'attempts before it is dead (default 3)')
    .option('--strict', 'refuse it (exit 1) when no known worker can run it, instead of a warning')
    .option('--wait', 'follow it until it ends: one line per state change and progress report')
    .option('--wait-timeout <seconds>', 'with --wait: stop waiting after this long (exit 2)')
    .option('--json', 'the API’s answer as JSON (with --wait: the job as it ended)')
    .action(
      async (
        opts: SubmitFlags & {
          strict?: boolean;
          wait?: boolean;
          waitTimeout?: string;
          json?: boolean;
        },
      ) => {
        const body = orFail(kit, submissionBody(opts, readInput));
        const timeoutMs = orFail(kit, parseWaitTimeout(opts.waitTimeout));
        const { status, json } = await kit.api<
          JobView & { errors?: { path: string; message: string }[]; error?: { message: string } }
        >('POST', `/api/jobs${opts.strict ? '?strict=1' : ''}`, {
          text: JSON.stringify(body),
          type: 'application/json',
        });
        if (status === 400) {
          if (opts.json) kit.out(JSON.stringify(json, null, 2));
          else
            for (const e of json.errors ?? [
              { path: '', message: json.error?.message ?? 'refused' },
            ])
              console.error(`peerway: ${describeError(e)}`);
          process.exitCode = JOB_EXIT.failed;
          return;
        }
        for (const w of json.warnings ?? []) console.error(`warning: ${w}`);
        if (opts.wait) {
          if (!opts.json) kit.out(`Submitted ${json.id} (${json.type}, priority ${json.priority})`);
          finish(kit, await follow(kit, json.id, timeoutMs, !!opts.json), opts, timeoutMs);
          return;
        }
        kit.print(opts, json, () => [
          `Submitted ${json.id} (${json.type}, priority ${json.priority}): ${json.state}`,
          `Follow it: peerway jobs show ${json.id} --follow`,
        ]);
      },
    );

  jobs
    .command('list')
    .description('your jobs, newest first: state, node, attempts')
    .option('--state <state>', `only these: ${JOB_STATES.join(', ')}`)
    .option('--type <type>', `only this connector: ${JOB_TYPES.join(', ')}`)
    .option('--limit <n>', 'at most this many (default 50, at most 200)')
    .option('--before <cursor>', 'the next page: the cursor the last page ended with')
    .option('--json', 'the API’s answer as JSON')
    .action(
      async (opts: {
        state?: string;
        type?: string;
        limit?: string;
        before?: string;
        json?: boolean;
      }) => {
        const q = new URLSearchParams();
        if (opts.state !== undefined) q.set('state', opts.state);
        if (opts.type !== undefined) q.set('type', opts.type);
        if (opts.limit !== undefined)
          q.set('limit', String(orFail(kit, parseIntFlag('--limit', opts.limit))));
        if (opts.before !== undefined)
          q.set('before', String(orFail(kit, parseIntFlag('--before', opts.before))));
        const { status, json } = await kit.api<{
          jobs: JobView[];
          next?: number;
          error?: { message: string };
        }>('GET', `/api/jobs${q.size ? `?${q}` : ''}`);
        if (status === 400) throw kit.error(json.error?.message ?? 'refused');
        kit.print(opts, json, () =>
          json.jobs.length === 0
            ? [
                opts.state || opts.type
                  ? 'No jobs like that.'
                  : 'No jobs yet: `peerway jobs submit --type simulation --input {}`.',
              ]
            : [
                ...kit.table(listRows(json.jobs)),
                ...(json.next !== undefined
                  ? [`(more: peerway jobs list ${listMore(opts, json.next)})`]
                  : []),
              ],
        );
      },
    );

  jobs
    .command('show <id>')
    .description(
      'one job: state, attempts (node, outcome, error), files with their URLs, output; --follow follows it (exit codes as submit --wait)',
    )
    .option('--follow', 'then follow it until it ends: one line per state change and progress')
    .option('--wait-timeout <seconds>', 'with --follow: stop after this long (exit 2)')
    .option('--download <dir>', 'save its files in this directory')
    .option('--json', 'the API’s answer as JSON')
    .action(
      async (
        id: string,
        opts: { follow?: boolean; waitTimeout?: string; download?: string; json?: boolean },
      ) => {
        const timeoutMs = orFail(kit, parseWaitTimeout(opts.waitTimeout));
        let { json: job } = await kit.api<JobView>('GET', jobPath(id));
        if (opts.follow && !FINAL_JOB_STATES.includes(job.state)) {
          if (!opts.json) kit.out(jobLines(job, kit.login().server, kit.table).join('\n'));
          const r = await follow(kit, id, timeoutMs, !!opts.json);
          job = r.job;
          if (opts.download && r.finished) await saveFiles(kit, job, opts.download);
          finish(kit, r, opts, timeoutMs);
          return;
        }
        kit.print(opts, job, () => jobLines(job, kit.login().server, kit.table));
        if (opts.download) await saveFiles(kit, job, opts.download);
        if (opts.follow) process.exitCode = exitFor(job.state) ?? JOB_EXIT.failed;
      },
    );

  for (const [verb, says] of [
    ['cancel', 'cancel a job: a queued one never runs, a running one is stopped on its node'],
    ['retry', 'run a dead or cancelled job again (its attempts start over)'],
  ] as const)
    jobs
      .command(`${verb} <id>`)
      .description(says)
      .option('--json', 'the API’s answer as JSON')
      .action(async (id: string, opts: { json?: boolean }) => {
        const { status, json } = await kit.api<JobView & { error?: { message: string } }>(
          'POST',
          `${jobPath(id)}/${verb}`,
        );
        if (status === 400) throw kit.error(json.error?.message ?? `cannot ${verb} ${id}`);
        kit.print(opts, json, () => [
          verb === 'cancel'
            ? `Cancelled ${json.id ?? id}: ${json.state ?? 'cancelled'}`
            : `Retrying ${json.id ?? id}: ${json.state ?? 'queued'} (peerway jobs show ${id} --follow)`,
        ]);
      });

  return jobs;
}

async function saveFiles(kit: CliKit, job: JobView, dir: string): Promise<void> {
  const saved = await download(kit, job, dir);
  // on stderr, so `--json` output stays one JSON document
  for (const p of saved) console.error(`saved ${p}`);
  if (saved.length === 0) console.error(`${job.id} has no files to save`);
}
