/** Maps errors to JSON HTTP answers; the only place PeerwayError codes become statuses. */
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { PeerwayError, httpStatusFor } from '@peerway/protocol';
import type { z } from 'zod';
import { logger } from '../logger';

const log = logger('http');

/** Wraps an async handler so a rejection reaches the error handler. */
export function route(
  fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown>,
): RequestHandler {
  return (req, res, next) => {
    fn(req, res, next).catch(next);
  };
}

/** Parses a request body with a schema, or throws a 400 naming the field. */
export function body<T>(schema: z.ZodType<T>, req: Request): T {
  const r = schema.safeParse(req.body ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PeerwayError('bad_request', `${i.path.join('.') || 'body'}: ${i.message}`);
  }
  return r.data;
}

export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (err instanceof PeerwayError) {
    res.status(httpStatusFor(err.code)).json({ error: { code: err.code, message: err.message } });
    return;
  }
  const status = (err as { status?: number; type?: string }).status;
  if (status && status >= 400 && status < 500) {
    // body-parser: malformed JSON, too large
    res.status(status).json({
      error: {
        code: status === 413 ? 'message_too_large' : 'bad_request',
        message: (err as Error).message,
      },
    });
    return;
  }
  log.error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
};
