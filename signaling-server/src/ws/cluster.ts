/**
 * Several server instances behind one URL. Each instance holds its own agent
 * and client WebSockets; what the others need to know travels over the
 * cluster: which agents are online where (with their load, draining flag and
 * accepted services), and session messages between a client on one instance
 * and an agent on another.
 *
 * One instance (the embedded default) uses `LocalCluster`, which knows no
 * one else. With `--redis-url`, `RedisCluster` (redis-cluster.ts) carries
 * the same messages over Redis pub/sub.
 */
import { z } from 'zod';
import {
  AgentToServerSchema,
  NodeLoadSchema,
  ServerToAgentSchema,
  type AgentToServer,
  type ServerToAgent,
} from '@peerway/protocol';

/** What every instance knows about an agent connected somewhere in the cluster. */
export const AgentInfoSchema = z.object({
  nodeId: z.string().max(128),
  shortId: z.string().max(16),
  name: z.string().max(256),
  /** The instance holding the agent's WebSocket. */
  instance: z.string().max(64),
  accepted: z.array(z.string().max(64)).max(64),
  /** Accepted services the node declared private: it serves them only to tokens of an own right. */
  privateServices: z.array(z.string().max(64)).max(64).optional(),
  draining: z.boolean(),
  load: NodeLoadSchema.optional(),
  /** When this connection authenticated (a newer connection of the node wins). */
  connectedAt: z.number(),
  /** Last heartbeat, on the holding instance's clock. */
  at: z.number(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

/** Agent messages about a session. */
export type AgentSessionMessage = Extract<
  AgentToServer,
  { type: 'answer' | 'candidate' | 'session-reject' | 'session-closed' | 'session-stats' }
>;

/** Messages addressed to one instance. */
export const ClusterMessageSchema = z.discriminatedUnion('kind', [
  /** From the client's instance: pass `msg` to the agent of `nodeId` you hold. */
  z.object({
    kind: z.literal('to-agent'),
    from: z.string().max(64),
    nodeId: z.string().max(128),
    sessionId: z.string().max(64),
    msg: ServerToAgentSchema,
  }),
  /** From the agent's instance: the agent said `msg` about a session of yours. */
  z.object({
    kind: z.literal('from-agent'),
    nodeId: z.string().max(128),
    sessionId: z.string().max(64),
    msg: AgentToServerSchema,
  }),
  /** From an instance that was asked to reach an agent it no longer holds. */
  z.object({
    kind: z.literal('agent-missing'),
    nodeId: z.string().max(128),
    sessionId: z.string().max(64),
  }),
  /** The node's desired set of replicas changed: send it to the agent of `nodeId` you hold. */
  z.object({ kind: z.literal('allocations-changed'), nodeId: z.string().max(128) }),
]);
export type ClusterMessage = z.infer<typeof ClusterMessageSchema>;
/** The messages about sessions (the broker's). */
export type SessionClusterMessage = Exclude<ClusterMessage, { kind: 'allocations-changed' }>;

/** What an instance holds right now. */
export interface InstanceCounts {
  agents: number;
  clients: number;
  sessions: number;
}

/** Another live instance, with what it said it holds at its last beat. */
export interface PeerInstance extends Partial<InstanceCounts> {
  id: string;
}

/** What the broker and the agent handlers see of the other instances. */
export interface Cluster {
  readonly instanceId: string;
  /** Instances alive right now, this one included. */
  instanceCount(): number;
  /** The other live instances. */
  peers(): PeerInstance[];
  start(): Promise<void>;
  /** This instance holds the agent (after auth, and after each heartbeat, drain or services change). */
  publishAgent(info: AgentInfo): void;
  /** This instance no longer holds that connection of the agent. */
  withdrawAgent(nodeId: string, connectedAt: number): void;
  /** The agent as another instance holds it, if it is online there. */
  remoteAgent(nodeId: string): AgentInfo | undefined;
  /** Agents online on other instances. */
  remoteAgentCount(): number;
  send(instance: string, m: ClusterMessage): void;
  /** A node was claimed, removed or changed through the HTTP API on some instance. */
  broadcastNodeChanged(nodeId: string, change: 'claimed' | 'removed'): void;
  /** A service's access, shares or serving grants changed through the HTTP API on some instance. */
  broadcastServiceChanged(name: string): void;
  close(): Promise<void>;
}

/** Who the cluster tells about what it hears. */
export interface ClusterHandlers {
  message(m: ClusterMessage): void;
  /** An agent held by another instance went away (or that instance died). */
  remoteAgentGone(nodeId: string): void;
  /** Another instance now holds a node this instance also holds: the newer connection wins. */
  agentElsewhere(info: AgentInfo): void;
  nodeChanged(nodeId: string, change: 'claimed' | 'removed'): void;
  serviceChanged(name: string): void;
  /** What this instance holds, for its beats. */
  counts(): InstanceCounts;
}

/** The single-instance cluster: no one else to tell. */
export class LocalCluster implements Cluster {
  readonly instanceId = 'local';
  constructor(private readonly handlers: ClusterHandlers) {}
  instanceCount = () => 1;
  peers = (): PeerInstance[] => [];
  start = () => Promise.resolve();
  publishAgent(): void {}
  withdrawAgent(): void {}
  remoteAgent(): undefined {
    return undefined;
  }
  remoteAgentCount = () => 0;
  send(): void {
    // Every agent is local: nothing is ever addressed to another instance.
  }
  broadcastNodeChanged(nodeId: string, change: 'claimed' | 'removed'): void {
    this.handlers.nodeChanged(nodeId, change);
  }
  broadcastServiceChanged(name: string): void {
    this.handlers.serviceChanged(name);
  }
  close = () => Promise.resolve();
}

export type { AgentToServer, ServerToAgent };
