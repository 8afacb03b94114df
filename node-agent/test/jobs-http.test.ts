/**
 * The http connector against real HTTP servers on 127.0.0.1: a request goes
 * to the declared service's origin under its prefix, by path only; JSON
 * answers are parsed, others are text; bodies are size-bounded; paths that
 * could leave the origin or prefix, services not allowed, and headers a job
 * may not set are refused for good.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import pino from 'pino';
import { parseJobInput, type JobRequirements } from '@peerway/protocol';
import { HttpConnector } from '../src/jobs/connectors/http';
import type { JobContext } from '../src/jobs/connectors/types';
import { JobError } from '../src/jobs/errors';

const log = pino({ level: 'silent' });
const seen: { host: string; method: string; url: string; body: string; type: string }[] = [];

function listen(handler: http.RequestListener): Promise<http.Server> {
  const s = http.createServer(handler);
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}
const port = (s: http.Server) => (s.address() as { port: number }).port;

const ctx = (service: string, signal = new AbortController().signal): JobContext => ({
  id: 'j',
  attempt: 1,
  requirements: { service, models: [], labels: {} } as JobRequirements,
  signal,
  progress: () => undefined,
  log,
});
const input = (raw: unknown) => {
  const r = parseJobInput('http', raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.input;
};

describe('the http connector', () => {
  let api: http.Server;
  let other: http.Server;
  let connector: HttpConnector;

  beforeAll(async () => {
    api = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          host: req.headers.host ?? '',
          method: req.method ?? '',
          url: req.url ?? '',
          body: Buffer.concat(chunks).toString(),
          type: req.headers['content-type'] ?? '',
        });
        if (req.url?.startsWith('/v1/big')) return res.end('y'.repeat(20_000));
        if (req.url?.startsWith('/v1/text'))
          return res.writeHead(200, { 'content-type': 'text/plain' }).end('plain words');
        if (req.url?.startsWith('/v1/slow')) return void setTimeout(() => res.end('late'), 5_000);
        if (req.url?.startsWith('/v1/redirect'))
          return res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' }).end();
        res
          .writeHead(201, { 'content-type': 'application/json', 'x-answer': 'yes' })
          .end(JSON.stringify({ got: req.url, method: req.method }));
      });
    });
    other = await listen((_req, res) => res.end('other service'));
    connector = new HttpConnector({
      services: new Map([['api', `http://127.0.0.1:${port(api)}/v1`]]),
      maxBodyBytes: 10_000,
    });
  });
  afterAll(async () => {
    await new Promise((r) => api.close(r));
    await new Promise((r) => other.close(r));
  });

  it('reports the services it may call', async () => {
    expect(await connector.describe()).toEqual({
      type: 'http',
      services: ['api'],
      models: [],
      images: [],
    });
  });

  it('calls the service under its prefix and parses a JSON answer', async () => {
    const out = await connector.run(
      input({ method: 'POST', path: '/items?x=1', body: { a: 1 }, headers: { 'X-Trace': 't1' } }),
      ctx('api'),
    );
    expect(out.output).toMatchObject({
      status: 201,
      headers: { 'x-answer': 'yes', 'content-type': 'application/json' },
      body: { got: '/v1/items?x=1', method: 'POST' },
    });
    const req = seen.at(-1)!;
    expect(req).toMatchObject({
      host: `127.0.0.1:${port(api)}`,
      body: '{"a":1}',
      type: 'application/json',
    });
  });

  it('returns text as text and redirects as they are, not followed', async () => {
    expect(
      (await connector.run(input({ method: 'GET', path: '/text' }), ctx('api'))).output,
    ).toMatchObject({
      status: 200,
      body: 'plain words',
    });
    expect(
      (await connector.run(input({ method: 'GET', path: '/redirect' }), ctx('api'))).output,
    ).toMatchObject({
      status: 302,
      headers: { location: 'http://127.0.0.1:9/elsewhere' },
    });
  });

  it('refuses an answer over its size bound, for good', async () => {
    const err = (await connector
      .run(input({ method: 'GET', path: '/big' }), ctx('api'))
      .catch((e: unknown) => e)) as JobError;
    expect(err).toBeInstanceOf(JobError);
    expect(err).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/over 10000 bytes/),
    });
  });

  it('never leaves the declared origin or prefix', async () => {
    const before = seen.length;
    for (const path of ['/../secret', '/%2e%2e/secret', '/a/..%2f..%2fx', '/%252e%252e/x']) {
      const err = (await connector
        .run(input({ method: 'GET', path }), ctx('api'))
        .catch((e: unknown) => e)) as JobError;
      expect(err, path).toBeInstanceOf(JobError);
      expect(err.retryable, path).toBe(false);
      expect(err.message, path).toMatch(/^input\.path: /);
    }
    // a Host header could pick another virtual host: refused
    const host = (await connector
      .run(
        input({ method: 'GET', path: '/', headers: { Host: `127.0.0.1:${port(other)}` } }),
        ctx('api'),
      )
      .catch((e: unknown) => e)) as JobError;
    expect(host.message).toMatch(/input\.headers\.Host/);
    expect(seen.length).toBe(before);
  });

  it('calls only the services its owner allowed', async () => {
    const err = (await connector
      .run(input({ path: '/' }), ctx('other'))
      .catch((e: unknown) => e)) as JobError;
    expect(err).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/may not call "other"/),
    });
  });

  it('stops the request when the job is aborted', async () => {
    const abort = new AbortController();
    const t0 = Date.now();
    const run = connector.run(input({ method: 'GET', path: '/slow' }), ctx('api', abort.signal));
    setTimeout(() => abort.abort('cancelled by its submitter'), 100);
    const err = (await run.catch((e: unknown) => e)) as JobError;
    expect(err.message).toBe('cancelled by its submitter');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
