/**
 * Fixtures for the jobs tests: a worker that speaks the jobs part of the
 * agent protocol over a real WebSocket (worker, job-pull, heartbeats,
 * started, progress, result, failed), as the real agent's worker does, but
 * driven step by step by the test; and an SSE reader for a job's events.
 */
import type {
  NodeResources,
  ServerToAgent,
  WorkerCapabilities,
  WorkerConnector,
} from '@peerway/protocol';
import type { NodeIdentity } from '@peerway/protocol/node';
import { FakeAgent } from './helpers';
import { report } from './cluster-fixtures';
import type { PeerwayServer } from '../src/server';

export type Lease = Extract<ServerToAgent, { type: 'job-lease' }>;
export type Cancel = Extract<ServerToAgent, { type: 'job-cancel' }>;

/** A connector as the agent reports it, with empty lists unless given. */
export function connector(
  type: WorkerConnector['type'],
  over: Partial<WorkerConnector> = {},
): WorkerConnector {
  return { type, services: [], models: [], images: [], ...over };
}

export class TestWorker extends FakeAgent {
  private leases: Lease[] = [];
  private leaseWaiters: ((l: Lease) => void)[] = [];
  readonly cancels: Cancel[] = [];
  private cancelWaiters: ((c: Cancel) => void)[] = [];

  constructor(server: PeerwayServer, identity?: NodeIdentity) {
    super(server, identity);
    this.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as ServerToAgent;
      if (m.type === 'job-lease') {
        const w = this.leaseWaiters.shift();
        if (w) w(m);
        else this.leases.push(m);
      } else if (m.type === 'job-cancel') {
        this.cancels.push(m);
        for (const w of this.cancelWaiters.splice(0)) w(m);
      }
    });
  }

  /**
   * Connects claimed by `token`'s user, reports resources, registers as a
   * worker with these connectors (simulation unless given) and, with
   * `free`, pulls that many jobs.
   */
  async join(
    token: string,
    opts: {
      connectors?: WorkerConnector[];
      concurrency?: number;
      resources?: NodeResources;
      free?: number;
    } = {},
  ): Promise<this> {
    const { reply } = await this.handshake({ token });
    if (reply.type !== 'welcome') throw new Error(`expected welcome, got ${reply.type}`);
    this.send({ type: 'resources', resources: opts.resources ?? report() });
    const capabilities: WorkerCapabilities = {
      concurrency: opts.concurrency ?? 1,
      connectors: opts.connectors ?? [connector('simulation')],
    };
    this.send({ type: 'worker', capabilities });
    if (opts.free !== undefined) this.pull(opts.free);
    return this;
  }

  pull(free: number): void {
    this.send({ type: 'job-pull', free });
  }

  /** The next lease the server sends. */
  lease(timeoutMs = 5000): Promise<Lease> {
    const l = this.leases.shift();
    if (l) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no lease within timeout')), timeoutMs);
      this.leaseWaiters.push((x) => (clearTimeout(t), resolve(x)));
    });
  }

  /** Leases received and not taken by `lease()` yet. */
  pendingLeases(): number {
    return this.leases.length;
  }

  /** The next cancel for this job (or one received already). */
  cancelOf(id: string, timeoutMs = 5000): Promise<Cancel> {
    const seen = this.cancels.find((c) => c.id === id);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no job-cancel for ${id}`)), timeoutMs);
      const w = (c: Cancel) => {
        if (c.id !== id) return void this.cancelWaiters.push(w);
        clearTimeout(t);
        resolve(c);
      };
      this.cancelWaiters.push(w);
    });
  }

  started(l: Lease): void {
    this.send({ type: 'job-started', id: l.id, attempt: l.attempt });
  }

  succeed(l: Lease, output?: unknown): void {
    this.send({
      type: 'job-result',
      id: l.id,
      attempt: l.attempt,
      outputUploaded: false,
      ...(output !== undefined ? { output } : {}),
    });
  }

  fail(l: Lease, error: string, retryable = true): void {
    this.send({ type: 'job-failed', id: l.id, attempt: l.attempt, error, retryable });
  }

  heartbeat(...ls: Lease[]): void {
    this.send({ type: 'job-heartbeat', leases: ls.map((l) => ({ id: l.id, attempt: l.attempt })) });
  }
}

/** A job's events over SSE (or, with id '*', all of the caller's jobs'), parsed as they come. */
export class JobEvents {
  readonly events: { event: string; data: any }[] = [];
  private waiters: (() => void)[] = [];
  readonly done: Promise<void>;
  private readonly abort = new AbortController();
  status = 0;

  constructor(server: PeerwayServer, id: string, token: string) {
    this.done = (async () => {
      const path = id === '*' ? '/api/jobs/events' : `/api/jobs/${id}/events`;
      const res = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: this.abort.signal,
      });
      this.status = res.status;
      if (!res.ok || !res.body) return this.wakeAll();
      let buf = '';
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && data) {
              this.events.push({ event: ev, data: JSON.parse(data) });
              this.wakeAll();
            }
          }
        }
      } catch {
        // aborted
      }
      this.wakeAll();
    })();
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until an event satisfies `ok`; returns it. */
  async until(ok: (e: { event: string; data: any }) => boolean, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find(ok);
      if (e) return e;
      if (Date.now() > deadline)
        throw new Error(`no such event; got ${JSON.stringify(this.events)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, Math.max(1, deadline - Date.now()));
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}
