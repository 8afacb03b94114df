/**
 * Whether each declared upstream answers: checked with a TCP connect at
 * start, again whenever a request to it fails, and every
 * `recheckMs` while it is down, so the owner learns once when a service
 * stops or comes back (never a line per request).
 */
import { connect } from 'node:net';
import { declaredUpstream } from './upstream-path';

/** How long a probe's TCP connect may take, in ms. */
export const UPSTREAM_PROBE_TIMEOUT_MS = 2000;
/** How often a down upstream is checked again, in ms. */
export const UPSTREAM_RECHECK_MS = 5000;

export type UpstreamState = { up: true } | { up: false; reason: string };

/** Words for a socket error code, as an owner reads them. */
export function describeConnectError(code: string | undefined, message = ''): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens on that port)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'no such host';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ECONNRESET':
      return 'the connection was reset';
    default:
      return code ?? (message || 'failed');
  }
}

/** Tries a TCP connection to the target's host and port. */
export function probeUpstream(
  target: string,
  timeoutMs = UPSTREAM_PROBE_TIMEOUT_MS,
): Promise<UpstreamState> {
  const { hostname, port, protocol } = declaredUpstream(target);
  return new Promise((resolve) => {
    const sock = connect({
      host: hostname.replace(/^\[|\]$/g, ''),
      port: Number(port || (protocol === 'https:' ? 443 : 80)),
    });
    const done = (s: UpstreamState) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(s);
    };
    const timer = setTimeout(
      () => done({ up: false, reason: `no answer within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    sock.once('connect', () => done({ up: true }));
    sock.once('error', (err: NodeJS.ErrnoException) =>
      done({ up: false, reason: describeConnectError(err.code, err.message) }),
    );
  });
}

export interface UpstreamHealthOptions {
  /** A service's state was learnt for the first time (`first`) or changed. */
  onChange: (service: string, state: UpstreamState, first: boolean) => void;
  recheckMs?: number;
  probe?: (target: string) => Promise<UpstreamState>;
}

/** The state of every declared upstream. */
export class UpstreamHealth {
  private readonly states = new Map<string, UpstreamState>();
  private readonly checking = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private readonly probe: (target: string) => Promise<UpstreamState>;
  /** Resolves once every upstream has been checked once. */
  readonly ready: Promise<void>;

  constructor(
    private readonly services: readonly { name: string; target: string }[],
    private readonly o: UpstreamHealthOptions,
  ) {
    this.probe = o.probe ?? ((t) => probeUpstream(t));
    this.ready = Promise.all(services.map((s) => this.check(s.name))).then(() => {});
    this.timer = setInterval(() => {
      for (const [name, s] of this.states) if (!s.up) void this.check(name);
    }, o.recheckMs ?? UPSTREAM_RECHECK_MS);
    this.timer.unref();
  }

  /** The last known state (undefined before the first check ends). */
  state(service: string): UpstreamState | undefined {
    return this.states.get(service);
  }

  /** Probes one upstream now (at most one probe at a time each). */
  async check(service: string): Promise<void> {
    const svc = this.services.find((s) => s.name === service);
    if (!svc || this.checking.has(service)) return;
    this.checking.add(service);
    try {
      this.set(service, await this.probe(svc.target));
    } finally {
      this.checking.delete(service);
    }
  }

  /** A request to it failed before any answer: check it again. */
  failed(service: string): void {
    void this.check(service);
  }

  /** It answered a request: it is up. */
  answered(service: string): void {
    if (this.states.get(service)?.up === false) this.set(service, { up: true });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private set(service: string, s: UpstreamState): void {
    const before = this.states.get(service);
    this.states.set(service, s);
    if (!before) this.o.onChange(service, s, true);
    else if (before.up !== s.up) this.o.onChange(service, s, false);
  }
}
