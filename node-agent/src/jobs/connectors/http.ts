/**
 * `http`: one request to one of the node's declared services, by path only.
 * As the tunnel's upstream does (../../upstream-path), the origin is the
 * declared target's and fixed here; the job's `path` is checked and only
 * ever put after the declared prefix as a string, never resolved as a URL,
 * so a job picks a path and never a host. Only the services its owner
 * listed for this connector can be called; redirects are returned, not
 * followed. Output: `{ status, headers, body }`, the body parsed when it is
 * JSON, else text, at most `maxBodyBytes`.
 */
import http from 'node:http';
import https from 'node:https';
import type { HttpInput, WorkerConnector } from '@peerway/protocol';
import { PeerwayError } from '@peerway/protocol';
import { declaredUpstream, upstreamPath } from '../../upstream-path';
import { JobError, abortReason } from '../errors';
import type { Connector, JobContext, JobOutcome } from './types';

/** Request headers a job may not set: the connector sets them, or they describe one hop. */
const REFUSED_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'expect',
]);

export interface HttpConnectorOptions {
  /** The services it may call, by name → the owner's declared target. */
  services: ReadonlyMap<string, string>;
  maxBodyBytes: number;
  /** How long the service may take to answer completely, in ms (the job's timeout bounds it too). */
  timeoutMs?: number;
}

export interface HttpJobOutput {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export class HttpConnector implements Connector {
  readonly type = 'http' as const;

  constructor(private readonly o: HttpConnectorOptions) {}

  describe(): Promise<WorkerConnector> {
    return Promise.resolve({
      type: 'http',
      services: [...this.o.services.keys()],
      models: [],
      images: [],
    });
  }

  async run(raw: unknown, ctx: JobContext): Promise<JobOutcome> {
    const input = raw as HttpInput;
    const service = ctx.requirements.service;
    const target = service !== undefined ? this.o.services.get(service) : undefined;
    if (service === undefined || target === undefined)
      throw new JobError(
        service === undefined
          ? 'an http job names the service it calls (requirements.service)'
          : `this node's http connector may not call "${service}" (it may call ${[...this.o.services.keys()].join(', ')})`,
        false,
      );
    const up = declaredUpstream(target);
    let path: string;
    try {
      path = upstreamPath(up.prefix, input.path);
    } catch (err) {
      throw new JobError(
        `input.path: ${err instanceof PeerwayError ? err.message : String(err)}`,
        false,
      );
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(input.headers)) {
      const name = k.toLowerCase();
      if (REFUSED_HEADERS.has(name) || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))
        throw new JobError(`input.headers.${k}: this header is not one a job may set`, false);
      if (/[\r\n\0]/.test(v))
        throw new JobError(`input.headers.${k}: a header value has no line breaks`, false);
      headers[name] = v;
    }
    let body: Buffer | undefined;
    if (input.bodyText !== undefined && input.body !== undefined)
      throw new JobError('input: give body (JSON) or bodyText, not both', false);
    if (input.body !== undefined) {
      body = Buffer.from(JSON.stringify(input.body));
      headers['content-type'] ??= 'application/json';
    } else if (input.bodyText !== undefined) {
      body = Buffer.from(input.bodyText);
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    }
    if (body) headers['content-length'] = String(body.length);
    headers.host = up.host;
    ctx.log.debug({ service, method: input.method, path }, 'http job request');
    const output = await this.request(up, input.method, path, headers, body, ctx.signal, service);
    return { output };
  }

  private request(
    up: ReturnType<typeof declaredUpstream>,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal,
    service: string,
  ): Promise<HttpJobOutput> {
    const max = this.o.maxBodyBytes;
    return new Promise((resolve, reject) => {
      const lib = up.protocol === 'https:' ? https : http;
      const req = lib.request({
        protocol: up.protocol,
        hostname: up.hostname.replace(/^\[|\]$/g, ''),
        port: up.port || (up.protocol === 'https:' ? 443 : 80),
        method,
        path,
        headers,
        agent: false,
        signal,
        ...(this.o.timeoutMs ? { timeout: this.o.timeoutMs } : {}),
      });
      const fail = (err: Error) => {
        if (signal.aborted) return reject(new JobError(abortReason(signal), true));
        reject(new JobError(`${service} did not answer: ${err.message}`, true, { cause: err }));
      };
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms`)));
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > max) {
            res.destroy();
            req.destroy();
            reject(
              new JobError(
                `${service} answered with a body over ${max} bytes (the http connector's maxBodyBytes)`,
                false,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (bytes > max) return;
          const text = Buffer.concat(chunks).toString('utf8');
          const type = String(res.headers['content-type'] ?? '');
          let parsed: unknown = text;
          if (/^application\/([\w.+-]+\+)?json\b/i.test(type) && text.length > 0) {
            try {
              parsed = JSON.parse(text) as unknown;
            } catch {
              parsed = text;
            }
          }
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: out, body: parsed });
        });
      });
      req.end(body);
    });
  }
}
