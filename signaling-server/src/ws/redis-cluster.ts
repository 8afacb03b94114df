/**
 * The cluster over Redis: one broadcast channel every instance listens to
 * (instance beats, agents online/gone with their load, node changes) and one
 * channel per instance for session messages addressed to it. Agents online
 * are also kept as keys that expire with the presence timeout, so an
 * instance that starts late learns who is online without waiting for
 * heartbeats.
 *
 * Liveness is judged on the receiving instance's own clock (when it last
 * heard something), never on a timestamp another machine wrote, so clock
 * skew between instances does not matter. An instance that stops beating is
 * dead after INSTANCE_DEAD_MS: its agents count as offline at once (they
 * reconnect to a live instance and are online again from there).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../logger';
import type { Clock } from './clock';
import {
  AgentInfoSchema,
  ClusterMessageSchema,
  type AgentInfo,
  type Cluster,
  type ClusterHandlers,
  type ClusterMessage,
  type InstanceCounts,
  type PeerInstance,
} from './cluster';

/** How often an instance says it is alive. */
export const INSTANCE_BEAT_MS = 1000;
/** Silent for this long, an instance is dead and its agents offline. */
export const INSTANCE_DEAD_MS = 3500;

const Broadcast = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('instance'),
    from: z.string().max(64),
    counts: z.object({ agents: z.number(), clients: z.number(), sessions: z.number() }).optional(),
  }),
  z.object({ t: z.literal('instance-gone'), from: z.string().max(64) }),
  z.object({ t: z.literal('agent'), from: z.string().max(64), info: AgentInfoSchema }),
  z.object({
    t: z.literal('agent-gone'),
    from: z.string().max(64),
    nodeId: z.string().max(128),
    connectedAt: z.number(),
  }),
  z.object({
    t: z.literal('node'),
    from: z.string().max(64),
    nodeId: z.string().max(128),
    change: z.enum(['claimed', 'removed']),
  }),
  z.object({ t: z.literal('service'), from: z.string().max(64), name: z.string().max(64) }),
]);
type Broadcast = z.infer<typeof Broadcast>;

// Deletes the agent's key only if it still describes this connection (a
// newer connection on another instance may have replaced it).
const WITHDRAW_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local info = cjson.decode(v)
if info.instance == ARGV[1] and tostring(info.connectedAt) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

interface Remote {
  info: AgentInfo;
  heardAt: number;
}

export class RedisCluster implements Cluster {
  readonly instanceId = randomBytes(6).toString('hex');
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly remotes = new Map<string, Remote>();
  /** Other instances, by when this one last heard from them. */
  private readonly instances = new Map<string, number>();
  private timer: unknown = null;

  constructor(
    url: string,
    private readonly handlers: ClusterHandlers,
    private readonly presenceTimeoutMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.pub = new Redis(url, { maxRetriesPerRequest: 2 });
    this.sub = new Redis(url, { maxRetriesPerRequest: 2 });
    for (const r of [this.pub, this.sub])
      r.on('error', (err: Error) => this.log.warn({ err: err.message }, 'cluster redis error'));
    // Pub/sub channels are global to a Redis server, not per database:
    // name them after the database so two deployments sharing a server stay apart.
    this.prefix = `peerway:${new URL(url).pathname.slice(1) || '0'}:`;
  }

  private get broadcastChannel(): string {
    return `${this.prefix}cluster`;
  }
  private inbox(instance: string): string {
    return `${this.prefix}to:${instance}`;
  }
  private agentKey(nodeId: string): string {
    return `${this.prefix}agent:${nodeId}`;
  }

  async start(): Promise<void> {
    this.sub.on('message', (channel: string, text: string) => this.receive(channel, text));
    await this.sub.subscribe(this.broadcastChannel, this.inbox(this.instanceId));
    // Who is online already: scan the agent keys once (later, broadcasts keep it current).
    const now = this.clock.now();
    let cursor = '0';
    do {
      const [next, keys] = await this.pub.scan(cursor, 'MATCH', this.agentKey('*'), 'COUNT', 500);
      cursor = next;
      const values = keys.length ? await this.pub.mget(...keys) : [];
      for (const v of values) {
        const info = v ? safeParse(AgentInfoSchema, v) : null;
        if (!info || info.instance === this.instanceId) continue;
        this.remotes.set(info.nodeId, { info, heardAt: now });
        // Assume its instance alive until it has had time to beat.
        if (!this.instances.has(info.instance)) this.instances.set(info.instance, now);
      }
    } while (cursor !== '0');
    this.beat();
    this.timer = this.clock.setInterval(() => {
      this.beat();
      this.sweep();
    }, INSTANCE_BEAT_MS);
  }

  private beat(): void {
    this.broadcast({ t: 'instance', from: this.instanceId, counts: this.handlers.counts() });
  }

  private broadcast(b: Broadcast): void {
    this.pub
      .publish(this.broadcastChannel, JSON.stringify(b))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'cluster broadcast failed'));
  }

  instanceCount(): number {
    return 1 + this.instances.size;
  }

  peers(): PeerInstance[] {
    return [...this.instances.keys()].map((id) => ({ id, ...this.counts.get(id) }));
  }

  /** What the other instances said they hold, at their last beat. */
  private readonly counts = new Map<string, InstanceCounts>();

  publishAgent(info: AgentInfo): void {
    const text = JSON.stringify(info);
    this.pub
      .set(this.agentKey(info.nodeId), text, 'PX', this.presenceTimeoutMs)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'could not store agent presence'));
    this.broadcast({ t: 'agent', from: this.instanceId, info });
  }

  withdrawAgent(nodeId: string, connectedAt: number): void {
    this.pub
      .eval(WITHDRAW_SCRIPT, 1, this.agentKey(nodeId), this.instanceId, String(connectedAt))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'could not clear agent presence'));
    this.broadcast({ t: 'agent-gone', from: this.instanceId, nodeId, connectedAt });
  }

  remoteAgent(nodeId: string): AgentInfo | undefined {
    const r = this.remotes.get(nodeId);
    if (!r || !this.fresh(r)) return undefined;
    return r.info;
  }

  remoteAgentCount(): number {
    let n = 0;
    for (const r of this.remotes.values()) if (this.fresh(r)) n++;
    return n;
  }

  private fresh(r: Remote): boolean {
    const now = this.clock.now();
    const seen = this.instances.get(r.info.instance);
    return (
      now - r.heardAt <= this.presenceTimeoutMs &&
      seen !== undefined &&
      now - seen <= INSTANCE_DEAD_MS
    );
  }

  send(instance: string, m: ClusterMessage): void {
    this.pub
      .publish(this.inbox(instance), JSON.stringify(m))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'cluster send failed'));
  }

  broadcastNodeChanged(nodeId: string, change: 'claimed' | 'removed'): void {
    this.handlers.nodeChanged(nodeId, change);
    this.broadcast({ t: 'node', from: this.instanceId, nodeId, change });
  }

  broadcastServiceChanged(name: string): void {
    this.handlers.serviceChanged(name);
    this.broadcast({ t: 'service', from: this.instanceId, name });
  }

  private receive(channel: string, text: string): void {
    try {
      if (channel === this.broadcastChannel) {
        const b = safeParse(Broadcast, text);
        if (b && b.from !== this.instanceId) this.onBroadcast(b);
      } else {
        const m = safeParse(ClusterMessageSchema, text);
        if (m) this.handlers.message(m);
        else this.log.warn({ channel }, 'malformed cluster message ignored');
      }
    } catch (err) {
      // A handler's fault must not stop the subscription.
      this.log.warn({ err }, 'cluster message handler failed');
    }
  }

  private onBroadcast(b: Broadcast): void {
    const now = this.clock.now();
    this.instances.set(b.from, now);
    switch (b.t) {
      case 'instance':
        if (b.counts) this.counts.set(b.from, b.counts);
        return;
      case 'instance-gone':
        this.instances.delete(b.from);
        this.counts.delete(b.from);
        return this.dropInstance(b.from);
      case 'agent': {
        const cur = this.remotes.get(b.info.nodeId);
        if (cur && cur.info.connectedAt > b.info.connectedAt) return; // stale news
        this.remotes.set(b.info.nodeId, { info: b.info, heardAt: now });
        this.handlers.agentElsewhere(b.info);
        return;
      }
      case 'agent-gone': {
        const cur = this.remotes.get(b.nodeId);
        if (!cur || cur.info.instance !== b.from || cur.info.connectedAt !== b.connectedAt) return;
        this.remotes.delete(b.nodeId);
        this.handlers.remoteAgentGone(b.nodeId);
        return;
      }
      case 'node':
        this.handlers.nodeChanged(b.nodeId, b.change);
        return;
      case 'service':
        this.handlers.serviceChanged(b.name);
        return;
      default: {
        const never: never = b;
        throw new Error(`unhandled broadcast ${(never as { t: string }).t}`);
      }
    }
  }

  private dropInstance(instance: string): void {
    for (const [id, r] of this.remotes) {
      if (r.info.instance !== instance) continue;
      this.remotes.delete(id);
      this.handlers.remoteAgentGone(id);
    }
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [id, seen] of this.instances) {
      if (now - seen > INSTANCE_DEAD_MS) {
        this.instances.delete(id);
        this.counts.delete(id);
        this.log.warn({ instance: id }, 'server instance stopped beating: its agents are offline');
        this.dropInstance(id);
      }
    }
    for (const [id, r] of this.remotes) {
      if (now - r.heardAt > this.presenceTimeoutMs) {
        this.remotes.delete(id);
        this.handlers.remoteAgentGone(id);
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer !== null) this.clock.clearInterval(this.timer);
    this.timer = null;
    await this.pub
      .publish(this.broadcastChannel, JSON.stringify({ t: 'instance-gone', from: this.instanceId }))
      .catch(() => {});
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}

function safeParse<T>(schema: z.ZodType<T>, text: string): T | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const r = schema.safeParse(raw);
  return r.success ? r.data : null;
}
