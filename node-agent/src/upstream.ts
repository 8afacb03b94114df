/**
 * The agent's upstream side: each tunnel request goes only to the upstream
 * its owner declared for the service. The host is fixed here, never taken
 * from the request: the visitor's target only ever becomes a path under the
 * declared prefix (./upstream-path), put after the declared origin as a
 * string, never resolved against it as a URL. CONNECT and TRACE are refused
 * (no open proxy). Keep-alive connections are reused; redirects are passed back, not
 * followed; bodies stream both ways with backpressure.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import type { IncomingTunnelRequest, IncomingTunnelSocket, HeaderPairs } from '@peerway/protocol';
import type { Logger } from 'pino';
import { PeerwayError, ResetCode } from '@peerway/protocol';
import { declaredUpstream, upstreamPath } from './upstream-path';
import { downAnswer } from './down-page';

/** Headers that describe one hop, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);
const WS_OWN = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'sec-websocket-accept',
]);
/**
 * Proxy headers a client could forge: dropped from every tunnel request, then
 * set by the agent from what it knows (allow-list, STYLE §5).
 */
const FORWARDING = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-real-ip',
]);
const REFUSED_METHODS = new Set(['CONNECT', 'TRACE']);

export interface UpstreamOptions {
  /** The service's public origin (e.g. https://wiki.peerway.example), for X-Forwarded-Proto/Host. */
  publicOrigin?: string;
  /** How long the upstream may take to answer with a head (then 504), in ms. */
  headTimeoutMs?: number;
  /** The upstream answered a request (with any status). */
  onAnswered?: () => void;
  /** A request to the upstream failed before it answered (refused, reset, unreachable). */
  onFailed?: (code: string) => void;
}

/** Per-session facts for X-Forwarded-For. */
export interface PeerInfo {
  /** The browser's address as ICE saw it (its relay's, when relayed). */
  address?: string | undefined;
}

/** How long the upstream may take to answer with a head, by default, in ms. */
export const UPSTREAM_HEAD_TIMEOUT_MS = 30_000;

function filterHeaders(h: HeaderPairs, extraDrop?: Set<string>): HeaderPairs {
  const connectionListed = new Set(
    h
      .filter(([k]) => k.toLowerCase() === 'connection')
      .flatMap(([, v]) => v.split(',').map((s) => s.trim().toLowerCase())),
  );
  return h.filter(([k]) => {
    const l = k.toLowerCase();
    return !HOP_BY_HOP.has(l) && !connectionListed.has(l) && !extraDrop?.has(l);
  });
}

/**
 * The path to ask the upstream for, or why the request is refused: one
 * decision for HTTP and WebSocket alike (see ./upstream-path).
 */
export function targetFor(
  method: string,
  prefix: string,
  target: string,
): { path: string } | { refused: string } {
  if (REFUSED_METHODS.has(method.toUpperCase()))
    return { refused: `${method} is not allowed through Peerway` };
  try {
    return { path: upstreamPath(prefix, target) };
  } catch (err) {
    if (err instanceof PeerwayError) return { refused: err.message };
    throw err;
  }
}

const text = (s: string) => new TextEncoder().encode(s);

export class Upstream {
  private readonly base: ReturnType<typeof declaredUpstream>;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;

  private readonly forwarded: [string, string][];
  private readonly headTimeoutMs: number;

  constructor(
    readonly service: string,
    target: string,
    private readonly log: Logger,
    private readonly opts: UpstreamOptions = {},
  ) {
    this.headTimeoutMs = opts.headTimeoutMs ?? UPSTREAM_HEAD_TIMEOUT_MS;
    // Not `new URL`: "wiki.127.0.0.1" (a server reached by IP) is no valid URL host.
    const pub = /^(https?):\/\/([^/?#]+)/.exec(opts.publicOrigin ?? '');
    this.forwarded = pub
      ? [
          ['x-forwarded-proto', pub[1]!],
          ['x-forwarded-host', pub[2]!],
        ]
      : [];
    this.base = declaredUpstream(target);
    this.mod = this.base.protocol === 'https:' ? https : http;
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: 128 });
  }

  /** Serves one tunnel request from the upstream. */
  async handleRequest(req: IncomingTunnelRequest, peer: PeerInfo = {}): Promise<void> {
    const { method } = req.head;
    const target = targetFor(method, this.base.prefix, req.head.path);
    if ('refused' in target) {
      await req.respond(
        {
          status: 400,
          statusText: 'Bad Request',
          headers: [['content-type', 'text/plain; charset=utf-8']],
        },
        text(`Peerway: ${target.refused}\n`),
      );
      this.log.info({ service: this.service, refused: target.refused }, 'request target refused');
      return;
    }
    const { path } = target;
    const headers = filterHeaders(req.head.headers, FORWARDING);
    const flat: string[] = [];
    for (const [k, v] of headers) flat.push(k, v);
    flat.push('host', this.base.host);
    for (const [k, v] of this.forwarded) flat.push(k, v);
    if (peer.address) flat.push('x-forwarded-for', peer.address);
    const hasBody =
      !['GET', 'HEAD'].includes(method.toUpperCase()) ||
      headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));

    await new Promise<void>((resolve) => {
      let answered = false;
      /** Sends the request; `retried`: this is the one resend a reset keep-alive socket gets. */
      const send = (retried: boolean): void => {
        const up = this.mod.request({
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          method,
          // validated and under the prefix; the host above is the declared one
          path,
          headers: flat,
          // the resend takes a new connection: the pool's other idle sockets
          // may have been closed just the same
          agent: retried ? false : this.agent,
          timeout: this.headTimeoutMs,
        });
        // The visitor learns that the service is down or slow, never where
        // it lives on this node nor how it failed: that goes to the log.
        const fail = (kind: 'down' | 'slow') => {
          if (answered) return;
          answered = true;
          const a = downAnswer(this.service, kind, req.head.headers, this.headTimeoutMs);
          req
            .respond(
              { status: a.status, statusText: a.statusText, headers: a.headers },
              method.toUpperCase() === 'HEAD' ? null : text(a.body),
            )
            .finally(resolve);
        };
        req.signal.addEventListener('abort', () => {
          up.destroy();
          resolve();
        });
        let timedOut = false;
        up.on('timeout', () => {
          timedOut = true;
          up.destroy();
          this.log.warn(
            { service: this.service, timeoutMs: this.headTimeoutMs },
            'upstream did not answer in time',
          );
          fail('slow');
        });
        up.on('error', (err: NodeJS.ErrnoException) => {
          if (req.signal.aborted || timedOut) return resolve();
          // A keep-alive socket the upstream closed while it sat idle (Node's
          // servers drop them after 5 s) fails the next request written to it
          // before the upstream read a byte of it. A request with no body can
          // go again on a new socket, once, as browsers do.
          if (
            !answered &&
            !retried &&
            !hasBody &&
            up.reusedSocket &&
            (err.code === 'ECONNRESET' || err.code === 'EPIPE')
          ) {
            this.log.debug(
              { service: this.service, err: err.code },
              'upstream closed an idle socket: resending',
            );
            return send(true);
          }
          if (answered) {
            req.reset(ResetCode.UPSTREAM_ERROR, `upstream failed: ${err.code ?? err.message}`);
            return resolve();
          }
          this.log.warn({ service: this.service, err: err.code ?? err.message }, 'upstream error');
          this.opts.onFailed?.(err.code ?? err.message);
          fail('down');
        });
        up.on('response', (res) => {
          answered = true;
          this.opts.onAnswered?.();
          up.setTimeout(0);
          const pairs: HeaderPairs = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2)
            pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
          const body =
            method.toUpperCase() === 'HEAD' || res.statusCode === 204 || res.statusCode === 304
              ? null
              : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
          if (!body) res.resume();
          req
            .respond(
              {
                status: res.statusCode ?? 502,
                statusText: res.statusMessage ?? '',
                headers: filterHeaders(pairs),
              },
              body,
            )
            .catch(() => res.destroy())
            .finally(resolve);
        });
        if (hasBody) {
          Readable.fromWeb(req.body as import('node:stream/web').ReadableStream<Uint8Array>)
            .on('error', () => up.destroy())
            .pipe(up);
        } else {
          if (!retried) req.body.cancel().catch(() => {});
          up.end();
        }
      };
      send(false);
    });
  }

  /** Bridges a tunnel WebSocket to the upstream's WebSocket at the same path. */
  handleWebSocket(inc: IncomingTunnelSocket, peer: PeerInfo = {}): void {
    const target = targetFor('GET', this.base.prefix, inc.head.path);
    if ('refused' in target) {
      this.log.info({ service: this.service, refused: target.refused }, 'WebSocket target refused');
      return inc.reject(400, target.refused.slice(0, 256));
    }
    // By string from the declared origin: the path is validated, so the
    // parse in ws cannot move the host. Checked again all the same, since
    // ws parses it as a URL (and would percent-encode a few query
    // characters a client sent raw).
    const url = `${this.base.protocol === 'https:' ? 'wss:' : 'ws:'}//${this.base.host}${target.path}`;
    const parsed = new URL(url);
    if (parsed.host !== this.base.host || parsed.href !== url) {
      this.log.info({ service: this.service, path: inc.head.path }, 'WebSocket target refused');
      return inc.reject(400, 'the request target has characters that must be percent-encoded');
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of filterHeaders(inc.head.headers, new Set([...WS_OWN, ...FORWARDING])))
      headers[k] = v;
    for (const [k, v] of this.forwarded) headers[k] = v;
    if (peer.address) headers['x-forwarded-for'] = peer.address;
    const up = new WebSocket(parsed, inc.head.protocols ?? [], {
      headers,
      perMessageDeflate: false,
    });
    let tunnel: ReturnType<IncomingTunnelSocket['accept']> | null = null;
    inc.signal.addEventListener('abort', () => up.terminate());
    up.on('unexpected-response', (_r, res) => {
      inc.reject(res.statusCode ?? 502, res.statusMessage ?? 'Bad Gateway');
      up.terminate();
    });
    up.on('error', (err) => {
      if (!tunnel) {
        this.log.warn({ service: this.service, err: err.message }, 'upstream WebSocket failed');
        this.opts.onFailed?.((err as NodeJS.ErrnoException).code ?? err.message);
        try {
          inc.reject(502, `${this.service} is down on its node`);
        } catch {
          // already answered
        }
      } else tunnel.close(1011, 'upstream error');
    });
    up.on('open', () => {
      const t = inc.accept({ protocol: up.protocol });
      tunnel = t;
      t.onMessage((m) => up.send(m, { binary: typeof m !== 'string' }));
      t.onClose((code, reason) => {
        const ok = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 && code !== 1015;
        up.close(ok ? code : 1000, reason);
      });
      up.on('message', (data, isBinary) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        t.send(
          isBinary
            ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
            : buf.toString('utf8'),
        ).catch(() => up.terminate());
      });
      up.on('close', (code, reason) =>
        t.close(code === 1005 || code === 1006 ? 1000 : code, reason.toString()),
      );
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
