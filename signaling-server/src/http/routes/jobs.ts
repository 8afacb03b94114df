/**
 * Jobs: the user's API (`POST /api/jobs`, show, list, cancel, retry, the
 * job's events as Server-Sent Events, its files, `GET /api/workers`) and
 * the agent's HTTP side of a lease (`/api/agent/jobs/:id/...`, with the
 * lease token as bearer: the input, an output too big for a message, the
 * attempt's files). Only the submitter (or an admin) sees a job: anyone
 * else gets 404, as if it did not exist.
 *
 * These routes read their own bodies (larger than the API's 64 KiB JSON
 * limit): `parsesOwnBody` tells the app's JSON parser to leave them alone.
 */
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import {
  FINAL_JOB_STATES,
  JOB_STATES,
  JOB_TYPES,
  MAX_JOB_INPUT_BYTES,
  MAX_JOB_OUTPUT_BYTES,
  PeerwayError,
  jsonBytes,
  parseJobSubmission,
  type JobEvent,
} from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import type { JobsApi } from '../../jobs/api';
import type { JobBroker } from '../../jobs/broker';
import { sizeText, type JobFiles } from '../../jobs/files';
import { jobView, workerView } from '../../jobs/views';
import type { JobRecord, JobStore } from '../../store/jobs';
import type { User } from '../../store/store';
import { bearerOf, needUser } from '../caller';
import { route } from '../errors';
import type { RouteModule } from '../route-module';

/** A submission's whole body: the input's limit and room for the rest. */
export const MAX_JOB_SUBMIT_BYTES = MAX_JOB_INPUT_BYTES + 64 * 1024;
/** A comment line this often keeps proxies from closing a quiet event stream. */
export const JOB_EVENTS_KEEPALIVE_MS = 15_000;
/** Event streams one user may hold open at once. */
export const MAX_JOB_STREAMS_PER_USER = 32;

const CONTENT_TYPE_RE =
  /^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,64}(?:\s*;[^\r\n]{0,200})?$/;
/** Served inline (the dashboard shows them); everything else is a download. */
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** Requests whose bodies these routes read themselves (not the app's 64 KiB JSON parser). */
export function parsesOwnBody(req: Request): boolean {
  return (
    (req.method === 'POST' && req.path === '/api/jobs') || req.path.startsWith('/api/agent/jobs/')
  );
}

const ListQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  type: z.enum(JOB_TYPES).optional(),
  before: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  all: z
    .enum(['1', 'true', '0', 'false'])
    .optional()
    .transform((v) => v === '1' || v === 'true'),
});

const yes = (v: unknown) => ['1', 'true', 'yes'].includes(String(v ?? ''));

/** A 413 when the declared length is over `max` (before a byte of the body is read). */
function refuseLength(req: Request, max: number, what: string): void {
  const n = Number(req.headers['content-length'] ?? 0);
  if (n > max)
    throw new PeerwayError('message_too_large', `${what} is ${n} bytes; at most ${sizeText(max)}`);
}

/** The jobs routes. */
export function jobRoutes(deps: {
  api: JobsApi;
  broker: Pick<JobBroker, 'subscribe' | 'subscribeSubmitter' | 'workerInfos' | 'leasedJob'>;
  store: Pick<JobStore, 'getJob' | 'addJobFile'>;
  files: JobFiles;
}): RouteModule {
  const { api, broker, store, files } = deps;
  const submitJson = express.json({ limit: MAX_JOB_SUBMIT_BYTES });
  const outputJson = express.json({ limit: MAX_JOB_OUTPUT_BYTES + 1024, strict: false });
  const streams = new Map<string, number>();

  return (r) => {
    r.post(
      '/api/jobs',
      route(async (req, res, next) => {
        needUser(req);
        refuseLength(req, MAX_JOB_SUBMIT_BYTES, 'the submission');
        if (!req.is('application/json'))
          throw new PeerwayError(
            'bad_request',
            'send the job as JSON (content-type: application/json)',
          );
        next();
      }),
      submitJson,
      route(async (req, res) => {
        const user = needUser(req);
        const raw: unknown = req.body;
        const inputBytes =
          raw && typeof raw === 'object' && 'input' in raw ? jsonBytes(raw.input) : 0;
        if (inputBytes > MAX_JOB_INPUT_BYTES)
          throw new PeerwayError(
            'message_too_large',
            `the input is ${inputBytes} bytes of JSON; at most ${sizeText(MAX_JOB_INPUT_BYTES)} (larger data: give a container job its files, or let the job fetch it)`,
          );
        const parsed = parseJobSubmission(raw);
        if (!parsed.ok) {
          const e = parsed.errors;
          res.status(400).json({
            error: {
              code: 'bad_request',
              message: `the job has ${e.length === 1 ? 'a problem' : `${e.length} problems`}: ${e
                .slice(0, 3)
                .map((x) => (x.path ? `${x.path}: ${x.message}` : x.message))
                .join('; ')}${e.length > 3 ? '; …' : ''}`,
            },
            errors: e,
          });
          return;
        }
        const result = await api.submit(user, parsed.job, yes(req.query.strict));
        if ('refused' in result) {
          res.status(422).json({
            error: {
              code: 'bad_request',
              message: `refused (strict): ${result.refused.join('; ')}`,
            },
            warnings: result.refused,
          });
          return;
        }
        res
          .status(result.created ? 202 : 200)
          .json({ ...jobView(result.job, result.warnings), created: result.created });
      }),
    );

    r.get(
      '/api/jobs',
      route(async (req, res) => {
        const user = needUser(req);
        const q = ListQuery.safeParse(req.query);
        if (!q.success) {
          const i = q.error.issues[0]!;
          throw new PeerwayError('bad_request', `${i.path.join('.')}: ${i.message}`);
        }
        const page = await api.list(user, q.data);
        res.json({
          jobs: page.jobs.map((j) => jobView(j)),
          ...(page.next !== undefined ? { next: page.next } : {}),
        });
      }),
    );

    const roomForStream = (user: User) => {
      if ((streams.get(user.id) ?? 0) >= MAX_JOB_STREAMS_PER_USER)
        throw new PeerwayError('rate_limited', 'too many job event streams open; close some');
    };

    /**
     * Opens an event stream for the caller (at most MAX_JOB_STREAMS_PER_USER
     * at once): `write` sends one event, `end` closes it (also when the
     * client goes), `onEnd` runs once it has ended.
     */
    const openStream = (req: Request, res: Response, user: User) => {
      roomForStream(user); // checked and counted in one step
      streams.set(user.id, (streams.get(user.id) ?? 0) + 1);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      let ended = false;
      const ends: (() => void)[] = [];
      const keepalive = setInterval(() => res.write(': keep-alive\n\n'), JOB_EVENTS_KEEPALIVE_MS);
      const end = () => {
        if (ended) return;
        ended = true;
        clearInterval(keepalive);
        for (const f of ends) f();
        const left = (streams.get(user.id) ?? 1) - 1;
        if (left > 0) streams.set(user.id, left);
        else streams.delete(user.id);
        res.end();
      };
      req.on('close', end);
      // The events of one tick go out in one write (a busy stream of all of
      // a user's jobs carries several per tick; each was its own write(2)).
      let corked = false;
      const uncork = () => {
        corked = false;
        res.uncork();
      };
      return {
        write: (type: string, data: unknown) => {
          if (ended) return;
          if (!corked) {
            corked = true;
            res.cork();
            process.nextTick(uncork);
          }
          res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
        },
        end,
        onEnd: (f: () => void) => ends.push(f),
      };
    };

    // Every job of the caller's, as one stream (what a submitter of many
    // jobs follows, like BullMQ's QueueEvents): each event carries its job's
    // `id`; from now on, no replay.
    r.get(
      '/api/jobs/events',
      route((req, res) => {
        const user = needUser(req);
        const stream = openStream(req, res, user);
        stream.onEnd(
          broker.subscribeSubmitter(user.id, (id, e) => stream.write(e.type, { id, ...e })),
        );
        stream.write('ready', { type: 'ready', at: Date.now() });
        return Promise.resolve();
      }),
    );

    r.get(
      '/api/jobs/:id',
      route(async (req, res) => {
        res.json(jobView(await api.get(needUser(req), String(req.params.id))));
      }),
    );
    r.post(
      '/api/jobs/:id/cancel',
      route(async (req, res) => {
        res.json(jobView(await api.cancel(needUser(req), String(req.params.id))));
      }),
    );
    r.post(
      '/api/jobs/:id/retry',
      route(async (req, res) => {
        res.json(jobView(await api.retry(needUser(req), String(req.params.id))));
      }),
    );

    r.get(
      '/api/jobs/:id/events',
      route(async (req, res) => {
        const user = needUser(req);
        const id = String(req.params.id);
        roomForStream(user);
        // Subscribed before the job is read (once: the read that checks the
        // caller may see it is the current state), so nothing falls
        // between; what arrives meanwhile follows the current state.
        let early: JobEvent[] | null = [];
        const unsubscribe = broker.subscribe(id, (e) => (early ? early.push(e) : send(e)));
        let job: JobRecord;
        let stream: ReturnType<typeof openStream>;
        try {
          job = await api.get(user, id);
          stream = openStream(req, res, user); // the limit again: others may have opened one meanwhile
        } catch (err) {
          unsubscribe();
          throw err;
        }
        stream.onEnd(unsubscribe);
        const send = (e: JobEvent) => {
          stream.write(e.type, e);
          if (e.type === 'state' && FINAL_JOB_STATES.includes(e.state)) stream.end();
        };
        const attempt = job.attempts.at(-1);
        const current: Extract<JobEvent, { type: 'state' }> = {
          type: 'state',
          state: job.state,
          at: job.updatedAt,
          ...(attempt ? { attempt: attempt.attempt, node: shortIdOf(attempt.nodeId) } : {}),
          ...(job.error !== undefined ? { reason: job.error } : {}),
        };
        send(current);
        if (job.progress && job.state === 'running' && attempt)
          send({ type: 'progress', attempt: attempt.attempt, ...job.progress });
        const queued = early;
        early = null;
        for (const e of queued)
          if (!(e.type === 'state' && e.state === current.state && e.at <= current.at)) send(e);
      }),
    );

    r.get(
      '/api/jobs/:id/files/:name',
      route(async (req, res) => {
        const job = await api.get(needUser(req), String(req.params.id));
        const name = String(req.params.name);
        const f = job.files.find((x) => x.name === name);
        const opened = f ? await files.open(job.id, name) : null;
        if (!f || !opened) throw new PeerwayError('not_found', `job ${job.id} has no file ${name}`);
        // The gateway's origin must never run what a worker uploaded.
        res.setHeader('content-type', f.contentType);
        res.setHeader('content-length', String(opened.bytes));
        res.setHeader('x-content-type-options', 'nosniff');
        res.setHeader('content-security-policy', "default-src 'none'; sandbox");
        res.setHeader(
          'content-disposition',
          `${INLINE_TYPES.has(f.contentType.split(';')[0]!.trim().toLowerCase()) ? 'inline' : 'attachment'}; filename="${name}"`,
        );
        opened.stream.pipe(res);
      }),
    );

    r.get(
      '/api/workers',
      route(async (req, res) => {
        const user = needUser(req);
        const list = broker
          .workerInfos()
          .filter(
            (w) =>
              user.isAdmin ||
              w.ownerId === user.id ||
              (w.ownerId !== null && (w.grants === '*' || w.grants.includes(user.id))),
          )
          .map((w) => workerView(w, true))
          .sort((a, b) => a.node.localeCompare(b.node));
        res.json({ workers: list });
      }),
    );

    // ---- the agent's side of a lease: the lease token is the bearer ----

    const leased = (req: Request) => broker.leasedJob(String(req.params.id), bearerOf(req));
    const attemptOf = (job: { attempts: { attempt: number }[] }) => job.attempts.at(-1)!.attempt;

    r.get(
      '/api/agent/jobs/:id/input',
      route(async (req, res) => {
        const job = await leased(req);
        res.json(job.input ?? null);
      }),
    );
    r.put(
      '/api/agent/jobs/:id/output',
      route(async (req, _res, next) => {
        refuseLength(req, MAX_JOB_OUTPUT_BYTES, 'the output');
        if (!req.is('application/json'))
          throw new PeerwayError('bad_request', 'send the output as JSON (application/json)');
        await leased(req);
        next();
      }),
      outputJson,
      route(async (req: Request, res: Response) => {
        const job = await leased(req);
        const text = JSON.stringify(req.body ?? null);
        if (Buffer.byteLength(text) > MAX_JOB_OUTPUT_BYTES)
          throw new PeerwayError(
            'message_too_large',
            `the output is over ${sizeText(MAX_JOB_OUTPUT_BYTES)} of JSON: larger results go as files`,
          );
        await files.saveOutput(job.id, attemptOf(job), text);
        res.json({ ok: true, bytes: Buffer.byteLength(text) });
      }),
    );
    r.put(
      '/api/agent/jobs/:id/files/:name',
      route(async (req, res) => {
        refuseLength(req, files.maxBytesPerJob, 'the file');
        const job = await leased(req);
        const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
        if (!CONTENT_TYPE_RE.test(contentType))
          throw new PeerwayError(
            'bad_request',
            `content-type ${JSON.stringify(contentType.slice(0, 80))} is not a media type like image/png`,
          );
        const name = String(req.params.name);
        const bytes = await files.save(job.id, name, req);
        const attempt = attemptOf(job);
        if (!(await store.addJobFile(job.id, attempt, { name, bytes, contentType })))
          throw new PeerwayError(
            'unauthorized',
            `attempt ${attempt} of job ${job.id} ended while its file was uploaded`,
          );
        res.status(201).json({ name, bytes, contentType });
      }),
    );
  };
}
