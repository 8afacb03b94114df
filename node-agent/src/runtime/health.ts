/**
 * A replica's health: an HTTP GET of its health path on the published
 * 127.0.0.1 port, repeated on an interval. A replica is `starting` until a
 * probe passes (status 200–399; redirects are not followed), then `running`;
 * it turns `unhealthy` after a run of failed probes, and back to `running`
 * when one passes again. While it starts, failures count only once its start
 * period is over, so a slow app is not called unhealthy for booting.
 */
import http from 'node:http';
import net from 'node:net';

export interface HealthSpec {
  /** The path probed, e.g. `/healthz`; null: a TCP connect to the port is the check. */
  path: string | null;
  intervalMs: number;
  /** How long one probe may take before it counts as failed. */
  timeoutMs: number;
  /** How long after start failures do not make the replica unhealthy. */
  startPeriodMs: number;
  /** Failed probes in a row that make a replica unhealthy. */
  unhealthyAfter: number;
  /**
   * The wait between probes until the first one passes (Docker's
   * --health-start-interval): an app that listens a moment after its
   * first probe is seen then, not a whole interval later.
   */
  startIntervalMs: number;
}

export const DEFAULT_HEALTH: HealthSpec = {
  path: '/',
  intervalMs: 5_000,
  timeoutMs: 2_000,
  startPeriodMs: 30_000,
  unhealthyAfter: 3,
  startIntervalMs: 250,
};

/** A passed probe's `status` is the HTTP status, or 0 for a TCP connect. */
export type ProbeResult = { ok: true; status: number } | { ok: false; reason: string };

/** The check in words: `GET /healthz`, or a TCP connect when there is no path. */
export function probeName(path: string | null): string {
  return path === null ? 'a TCP connect to its port' : `GET ${path}`;
}

/** A TCP connect to `127.0.0.1:<port>` (the check of a spec without a health path). Never throws. */
export function probeTcp(port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ ok: false, reason: `no connection within ${timeoutMs} ms` }),
      timeoutMs,
    );
    sock.once('connect', () => done({ ok: true, status: 0 }));
    sock.once('error', (err: NodeJS.ErrnoException) =>
      done({
        ok: false,
        reason: err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message),
      }),
    );
  });
}

/** One GET of `http://127.0.0.1:<port><path>`. Never throws. */
export function probeHttp(port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      done(
        status >= 200 && status < 400
          ? { ok: true, status }
          : { ok: false, reason: `HTTP ${status}` },
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({
        ok: false,
        reason: err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message),
      }),
    );
    const timer = setTimeout(
      () => done({ ok: false, reason: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
}

export type HealthState = 'starting' | 'running' | 'unhealthy';

/** The clock and timer the monitor uses; tests pass fake ones. */
export interface HealthTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: HealthTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface HealthMonitorOptions {
  spec: HealthSpec;
  probe: () => Promise<ProbeResult>;
  /** Called on every change of state, with the reason in words. */
  onChange: (state: HealthState, reason: string) => void;
  timers?: HealthTimers;
}

/** Probes on its interval (never two at once) and reports state changes. */
export class HealthMonitor {
  state: HealthState = 'starting';
  private failures = 0;
  private startedAt = 0;
  private handle: unknown = null;
  private stopped = true;
  private readonly timers: HealthTimers;

  constructor(private readonly opts: HealthMonitorOptions) {
    this.timers = opts.timers ?? REAL_TIMERS;
  }

  /** Probes now, then every interval after each probe ends (the start interval until one passes). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.startedAt = this.timers.now();
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== null) this.timers.clearTimeout(this.handle);
    this.handle = null;
  }

  private async tick(): Promise<void> {
    this.handle = null;
    const result = await this.opts.probe();
    if (this.stopped) return;
    this.observe(result);
    const { intervalMs, startIntervalMs } = this.opts.spec;
    const wait = this.state === 'starting' ? Math.min(intervalMs, startIntervalMs) : intervalMs;
    this.handle = this.timers.setTimeout(() => void this.tick(), wait);
  }

  private observe(result: ProbeResult): void {
    const { spec } = this.opts;
    const elapsedMs = this.timers.now() - this.startedAt;
    if (result.ok) {
      this.failures = 0;
      if (this.state !== 'running') {
        const was = this.state;
        this.state = 'running';
        const check = probeName(spec.path);
        this.opts.onChange(
          'running',
          result.status === 0
            ? was === 'starting'
              ? `${check} passed after ${elapsedMs} ms`
              : `${check} passes again`
            : was === 'starting'
              ? `${check} answered HTTP ${result.status} after ${elapsedMs} ms`
              : `${check} answers HTTP ${result.status} again`,
        );
      }
      return;
    }
    this.failures++;
    if (this.state === 'unhealthy' || this.failures < spec.unhealthyAfter) return;
    if (this.state === 'starting') {
      if (elapsedMs < spec.startPeriodMs) return;
      this.state = 'unhealthy';
      this.opts.onChange(
        'unhealthy',
        `${probeName(spec.path)} did not pass within ${elapsedMs} ms of start ` +
          `(${this.failures} failed probes, the last: ${result.reason})`,
      );
      return;
    }
    this.state = 'unhealthy';
    this.opts.onChange(
      'unhealthy',
      `${probeName(spec.path)} failed ${this.failures} times in a row (the last: ${result.reason})`,
    );
  }
}
