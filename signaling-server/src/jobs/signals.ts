/**
 * What the jobs broker tells the other server instances: a job is waiting
 * (so a worker held elsewhere can take it), a job's event (for SSE streams
 * on another instance), a cancel for a worker held elsewhere, the workers
 * each instance holds (for `GET /api/workers` and the submit-time check),
 * and a node's job grants changed. One instance uses `LocalJobSignals`
 * (nobody to tell); with `--redis-url`, `RedisJobSignals` broadcasts on one
 * Redis pub/sub channel of its own. A lost signal is made good by the
 * broker's periodic pull of idle workers and the lease sweep.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import {
  JOB_STATES,
  JOB_TYPES,
  NodeResourcesSchema,
  WorkerConnectorSchema,
} from '@peerway/protocol';
import type { Logger } from '../logger';

export const JobEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('state'),
    state: z.enum(JOB_STATES),
    at: z.number(),
    attempt: z.number().int().optional(),
    node: z.string().max(16).optional(),
    reason: z.string().max(1000).optional(),
  }),
  z.object({
    type: z.literal('progress'),
    attempt: z.number().int(),
    value: z.number().optional(),
    max: z.number().optional(),
    message: z.string().max(500).optional(),
    at: z.number(),
  }),
]);

/** A worker as every instance knows it. */
export const WorkerInfoSchema = z.object({
  nodeId: z.string().max(128),
  shortId: z.string().max(16),
  name: z.string().max(256),
  ownerId: z.string().max(128).nullable(),
  /** Submitters whose jobs it may run besides its owner's ('*': everyone). */
  grants: z.union([z.literal('*'), z.array(z.string().max(128)).max(10_000)]),
  concurrency: z.number().int(),
  connectors: z.array(WorkerConnectorSchema).max(JOB_TYPES.length),
  /** The node's last resource report (null before it sent one). */
  resources: NodeResourcesSchema.nullable(),
  jobs: z.array(z.string().max(128)).max(1000),
  /** The holding instance's clock when it last said so (its own liveness is judged on arrival). */
  at: z.number(),
});
export type WorkerInfo = z.infer<typeof WorkerInfoSchema>;

const Signal = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('waiting'),
    submitterId: z.string().max(128),
    key: z.string().max(8192),
  }),
  z.object({
    t: z.literal('event'),
    id: z.string().max(128),
    event: JobEventSchema,
    submitterId: z.string().max(128).optional(),
  }),
  z.object({
    t: z.literal('cancel'),
    nodeId: z.string().max(128),
    id: z.string().max(128),
    attempt: z.number().int(),
    reason: z.string().max(500),
  }),
  z.object({ t: z.literal('worker'), info: WorkerInfoSchema }),
  z.object({ t: z.literal('worker-gone'), nodeId: z.string().max(128) }),
  z.object({ t: z.literal('grants'), nodeId: z.string().max(128) }),
]);
export type JobSignal = z.infer<typeof Signal>;

const Envelope = z.union([
  z.object({ from: z.string().max(64), s: Signal }),
  z.object({ from: z.string().max(64), hello: z.literal(true) }),
]);

/** Carries signals between instances; `onSignal` hears only the other instances' ones. */
export interface JobSignals {
  readonly instanceId: string;
  start(onSignal: (s: JobSignal) => void): Promise<void>;
  publish(s: JobSignal): void;
  close(): Promise<void>;
}

/** One instance: nobody else to tell. */
export class LocalJobSignals implements JobSignals {
  readonly instanceId = 'local';
  start = () => Promise.resolve();
  publish(): void {}
  close = () => Promise.resolve();
}

/** How often an instance counts the others on the channel (`PUBSUB NUMSUB`). */
export const PEER_COUNT_MS = 1000;

/**
 * Signals over Redis pub/sub, on a channel named after the database (as the
 * cluster's are). An instance that is alone on the channel publishes
 * nothing: every signal would come back only to itself, and on one
 * instance the publishes (about six a job) and decoding its own echoes were
 * a third of the server's CPU in `bench:jobs`. It counts the channel's
 * subscribers every PEER_COUNT_MS and, so that a new instance is not
 * missed for that long, each instance says `hello` as soon as it has
 * subscribed: whoever hears another instance publishes again at once. What
 * a new instance can still miss in that moment is what a lost signal
 * costs anyway (made good by the periodic pull and the workers' beat).
 */
export class RedisJobSignals implements JobSignals {
  readonly instanceId = randomBytes(6).toString('hex');
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  /** Other instances on the channel: null until first counted (publish meanwhile). */
  private others: number | null = null;
  /** When this instance last heard another one (a count older than that may miss it). */
  private heardOtherAt = 0;
  private countTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    url: string,
    private readonly log: Logger,
  ) {
    this.pub = new Redis(url, { maxRetriesPerRequest: 2 });
    this.sub = new Redis(url, { maxRetriesPerRequest: 2 });
    for (const r of [this.pub, this.sub])
      r.on('error', (err: Error) => this.log.warn({ err: err.message }, 'jobs redis error'));
    this.channel = `peerway:${new URL(url).pathname.slice(1) || '0'}:jobs`;
  }

  /** Whether publish() sends now (false only when this instance is known to be alone). */
  get sending(): boolean {
    return this.others !== 0;
  }

  async start(onSignal: (s: JobSignal) => void): Promise<void> {
    this.sub.on('message', (_channel: string, text: string) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return this.log.warn('malformed jobs signal ignored');
      }
      const env = Envelope.safeParse(parsed);
      if (!env.success) return this.log.warn('malformed jobs signal ignored');
      if (env.data.from === this.instanceId) return;
      this.heardOther();
      if (!('s' in env.data)) return; // hello
      try {
        onSignal(env.data.s);
      } catch (err) {
        this.log.warn({ err }, 'jobs signal handler failed');
      }
    });
    await this.sub.subscribe(this.channel);
    this.send({ from: this.instanceId, hello: true });
    await this.countOthers();
    this.countTimer = setInterval(() => void this.countOthers(), PEER_COUNT_MS);
    this.countTimer.unref();
  }

  private heardOther(): void {
    this.heardOtherAt = Date.now();
    if (!this.others) this.others = 1;
  }

  private async countOthers(): Promise<void> {
    const askedAt = Date.now();
    try {
      const reply = (await this.pub.pubsub('NUMSUB', this.channel)) as [string, number | string];
      const others = Math.max(0, Number(reply[1]) - 1);
      // a hello heard after the question was asked is newer than its answer
      this.others = others === 0 && this.heardOtherAt >= askedAt ? 1 : others;
    } catch (err) {
      this.others = null; // not known: publish
      this.log.warn({ err: (err as Error).message }, 'could not count the other instances');
    }
  }

  publish(s: JobSignal): void {
    if (this.others === 0) return;
    this.send({ from: this.instanceId, s });
  }

  private send(envelope: z.infer<typeof Envelope>): void {
    this.pub
      .publish(this.channel, JSON.stringify(envelope))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'jobs signal not sent'));
  }

  async close(): Promise<void> {
    if (this.countTimer) clearInterval(this.countTimer);
    this.sub.disconnect();
    this.pub.disconnect();
  }
}
