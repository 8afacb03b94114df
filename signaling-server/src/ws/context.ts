/**
 * What the signaling components share (one per server): configuration and
 * the server-wide services they all stand on. The components themselves
 * (broker, agent connections, the agent table) are handed to each other as
 * parameters, so none of them imports another through this module.
 */
import type { User, Store } from '../store/store';
import type { Logger } from '../logger';
import type { Clock } from './clock';
import type { Presence } from './presence';
import type { SignalingMetrics } from './metrics';
import type { Cluster } from './cluster';
import type { IceConfig } from './ice';
import type { PeerLimits } from './peer';
import { DEFAULT_CLIENT_TIMEOUTS, type ClientTimeouts } from './client-timeouts';

/** Per-connection limits and the client timeouts. */
type ClientLimits = PeerLimits & ClientTimeouts;

/** The slice of server configuration signaling needs. */
export interface SignalingConfig extends IceConfig {
  publicUrl: string;
  /** Services live at `<name>.<baseDomain>` (on publicUrl's scheme and port). */
  baseDomain: string;
  presenceTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** A node offline this long is lost: its replicas are placed on other nodes (default 30 s). */
  rescheduleAfterMs?: number;
  limits: ClientLimits & {
    /**
     * An agent speaks for every session of its node: an answer, its
     * candidates and a few stats reports each (~8 messages), so it gets a
     * bucket of its own. At the client rate (50/s) a node could take only
     * ~6 new sessions a second once the burst was spent; the fan-out bench
     * lost sessions to it at 100 at once.
     */
    agentMessagesPerSecond: number;
    agentMessageBurst: number;
    connectionsPerMinutePerIp: number;
    maxSessionsPerClient: number;
  };
}

export const DEFAULT_LIMITS: SignalingConfig['limits'] = {
  messagesPerSecond: 50,
  messageBurst: 200,
  agentMessagesPerSecond: 500,
  agentMessageBurst: 2000,
  maxBadMessages: 50,
  badWindowMs: 10_000,
  connectionsPerMinutePerIp: 600,
  maxSessionsPerClient: 32,
  ...DEFAULT_CLIENT_TIMEOUTS,
};

export interface SignalingContext {
  config: SignalingConfig;
  store: Store;
  log: Logger;
  clock: Clock;
  presence: Presence;
  metrics: SignalingMetrics;
  /** The other server instances (a no-op with one instance). */
  cluster: Cluster;
  serverKeys: { publicJwk: Record<string, unknown>; issuer: string };
  authenticateBearer(token: string): Promise<User | null>;
}
