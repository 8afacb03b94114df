/**
 * WebSocket signaling: `/ws/agent` for node agents, `/ws/client` for browser
 * shells and Node tunnel clients. Other upgrade paths are left alone.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  MAX_SIGNALING_MESSAGE_BYTES,
  parseAgentToServer,
  parseClientToServer,
  type AgentToServer,
  type ClientToServer,
  type ServerToAgent,
  type ServerToClient,
} from '@peerway/protocol';
import type { Store, User } from '../store/store';
import type { Logger } from '../logger';
import { AgentConnection } from './agent-handler';
import { Broker, type ClientPeer } from './broker';
import { systemClock, type Clock } from './clock';
import type { SignalingConfig, SignalingContext } from './context';
import { PerKeyRate } from './limits';
import { createMetrics } from './metrics';
import { CloseCode, Peer } from './peer';
import { Presence } from './presence';
import {
  LocalCluster,
  type AgentInfo,
  type Cluster,
  type ClusterHandlers,
  type PeerInstance,
} from './cluster';
import { RedisCluster } from './redis-cluster';

export { DEFAULT_LIMITS, type SignalingConfig } from './context';
export { CloseCode } from './peer';
export { turnCredentials, iceServersFor } from './ice';

export interface SignalingDeps {
  config: SignalingConfig;
  store: Store;
  logger: Logger;
  serverKeys: { publicJwk: Record<string, unknown>; issuer: string };
  authenticateBearer(token: string): Promise<User | null>;
  clock?: Clock;
  /** Share agents and route sessions with other instances over this Redis. */
  redisUrl?: string;
}

/** The admin view of signaling. */
export interface SignalingStats {
  /** This instance, how many are alive in the cluster (1 without Redis), and the others' counts. */
  instance: { id: string; instances: number; agentsElsewhere: number; peers: PeerInstance[] };
  agentsConnected: number;
  clientsConnected: number;
  liveSessions: number;
  sessionsPerMinute: { minute: number; count: number }[];
  setupMs: { p50: number | null; p90: number | null; p99: number | null };
  failuresByReason: Record<string, number>;
  connections: { relayed: number; direct: number; relayUdp: number; relayTcp: number };
  recent: {
    id: string;
    service: string;
    node: string;
    openedAt: number;
    setupMs: number | null;
    closedAt: number | null;
    failure: string | null;
    agent: unknown;
    client: unknown;
  }[];
}

export interface Signaling {
  presence: Presence;
  /** Online anywhere in the cluster: what the HTTP API shows. */
  presenceView: { isOnline(nodeId: string): boolean };
  cluster: Cluster;
  metrics: ReturnType<typeof createMetrics>;
  /** A node was claimed elsewhere (HTTP): its live connection re-evaluates its services. */
  onNodeClaimed(nodeId: string): void;
  /** A node was removed (HTTP): its live connection, wherever it is, is closed. */
  onNodeRemoved(nodeId: string): void;
  /** Resolves once the cluster (if any) is listening. */
  ready: Promise<void>;
  stats(): SignalingStats;
  close(): Promise<void>;
}

/** Attaches signaling to an HTTP server. */
export function attachSignaling(httpServer: Server, deps: SignalingDeps): Signaling {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger;
  const metrics = createMetrics({
    instances: () => cluster.instanceCount(),
    agentsElsewhere: () => cluster.remoteAgentCount(),
  });
  const agents = new Map<string, AgentConnection>();
  const clients = new Set<ClientPeer>();
  const presence = new Presence(deps.config.presenceTimeoutMs, clock, (id, at) => {
    deps.store
      .setNodeLastSeen(id, at)
      .catch((err: unknown) => log.warn({ err }, 'could not persist lastSeen'));
  });
  const info = (a: AgentConnection): AgentInfo => ({
    nodeId: a.nodeId,
    shortId: a.shortId,
    name: a.name,
    instance: cluster.instanceId,
    accepted: [...a.accepted],
    draining: a.draining,
    ...(a.load ? { load: a.load } : {}),
    connectedAt: a.connectedAt,
    at: clock.now(),
  });
  const handlers: ClusterHandlers = {
    counts: () => ({
      agents: agents.size,
      clients: clients.size,
      sessions: broker.sessions.liveCount,
    }),
    message: (m) => broker.fromCluster(m),
    remoteAgentGone: (nodeId) => {
      if (!agents.has(nodeId)) broker.nodeGone(nodeId);
    },
    agentElsewhere: (remote) => {
      broker.loadReported(remote.nodeId);
      const local = agents.get(remote.nodeId);
      if (local && local.connectedAt <= remote.connectedAt)
        local.peer.close(CloseCode.REPLACED, 'another connection of this node took over');
    },
    nodeChanged: (nodeId, change) => {
      const a = agents.get(nodeId);
      if (!a) return;
      if (change === 'removed') {
        a.peer.close(CloseCode.NODE_REMOVED, 'the node was removed by its owner');
        return;
      }
      void (async () => {
        const node = await deps.store.getNode(nodeId);
        const owner = node?.ownerId ? await deps.store.getUserById(node.ownerId) : null;
        if (owner) a.peer.send({ type: 'claimed', owner: owner.email });
        await a.evaluateServices();
      })().catch((err: unknown) => log.warn({ err }, 'could not re-evaluate services after claim'));
    },
  };
  const cluster: Cluster = deps.redisUrl
    ? new RedisCluster(deps.redisUrl, handlers, deps.config.presenceTimeoutMs, clock, log)
    : new LocalCluster(handlers);
  const ready = cluster.start();
  ready.catch((err: unknown) => log.error({ err }, 'could not join the cluster'));

  const ctx: SignalingContext = {
    config: deps.config,
    store: deps.store,
    log,
    clock,
    presence,
    metrics,
    broker: null as unknown as Broker,
    cluster,
    serverKeys: deps.serverKeys,
    authenticateBearer: deps.authenticateBearer,
    agents,
    registerAgent(a) {
      const old = agents.get(a.nodeId);
      if (old && old !== a)
        old.peer.close(CloseCode.REPLACED, 'another connection of this node took over');
      agents.set(a.nodeId, a);
      presence.connected(a.nodeId, a.onPresenceTimeout);
      metrics.agents.set(agents.size);
      cluster.publishAgent(info(a));
    },
    unregisterAgent(a) {
      if (agents.get(a.nodeId) !== a) return;
      agents.delete(a.nodeId);
      presence.disconnected(a.nodeId, a.onPresenceTimeout);
      metrics.agents.set(agents.size);
      cluster.withdrawAgent(a.nodeId, a.connectedAt);
      // Reconnected through another instance already? Then it is not gone.
      if (!cluster.remoteAgent(a.nodeId)) ctx.broker.nodeGone(a.nodeId);
      log.info({ node: a.shortId }, 'agent disconnected');
    },
    agentUpdated(a) {
      if (agents.get(a.nodeId) !== a) return;
      ctx.broker.loadReported(a.nodeId);
      cluster.publishAgent(info(a));
    },
  };
  const broker = new Broker(ctx);
  ctx.broker = broker;
  presence.start();

  // The hard cap closes the socket (1009); below it, oversized messages get an error.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * MAX_SIGNALING_MESSAGE_BYTES });
  const ipRate = new PerKeyRate(deps.config.limits.connectionsPerMinutePerIp, clock);

  // Dead-socket detection below the heartbeat: ws pings. Transport-level, so
  // on real timers even when the presence clock is injected.
  const pinger = setInterval(
    () => {
      for (const ws of wss.clients) {
        const w = ws as WebSocket & { alive?: boolean };
        if (w.alive === false) {
          w.terminate();
          continue;
        }
        w.alive = false;
        w.ping();
      }
    },
    Math.max(1000, deps.config.heartbeatIntervalMs),
  );
  pinger.unref();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws/agent' && path !== '/ws/client') return; // someone else's
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (!ipRate.hit(ip)) {
      socket.end(
        'HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const w = ws as WebSocket & { alive?: boolean };
      w.alive = true;
      ws.on('pong', () => (w.alive = true));
      if (path === '/ws/agent') {
        const peer = new Peer<AgentToServer, ServerToAgent>(
          ws,
          ip,
          'agent',
          parseAgentToServer,
          log.child({ side: 'agent' }),
          metrics,
          deps.config.limits,
          clock,
        );
        new AgentConnection(peer, ctx).start();
      } else {
        const peer: ClientPeer = new Peer<ClientToServer, ServerToClient>(
          ws,
          ip,
          'client',
          parseClientToServer,
          log.child({ side: 'client' }),
          metrics,
          deps.config.limits,
          clock,
        );
        clients.add(peer);
        metrics.clients.set(clients.size);
        ws.on('close', () => {
          clients.delete(peer);
          metrics.clients.set(clients.size);
          broker.clientGone(peer);
        });
        peer.listen((m) => broker.fromClient(peer, m));
      }
    });
  };
  httpServer.on('upgrade', onUpgrade);

  return {
    presence,
    presenceView: {
      isOnline: (nodeId) => presence.isOnline(nodeId) || cluster.remoteAgent(nodeId) !== undefined,
    },
    cluster,
    metrics,
    ready,
    onNodeClaimed: (nodeId) => cluster.broadcastNodeChanged(nodeId, 'claimed'),
    onNodeRemoved: (nodeId) => cluster.broadcastNodeChanged(nodeId, 'removed'),
    stats: () => ({
      instance: {
        id: cluster.instanceId,
        instances: cluster.instanceCount(),
        agentsElsewhere: cluster.remoteAgentCount(),
        peers: cluster.peers(),
      },
      ...stats(broker, agents.size, clients.size),
    }),
    async close() {
      httpServer.off('upgrade', onUpgrade);
      clearInterval(pinger);
      presence.stop();
      for (const ws of wss.clients) ws.close(CloseCode.SHUTDOWN, 'server shutting down');
      await new Promise<void>((r) => wss.close(() => r()));
      for (const ws of wss.clients) ws.terminate();
      await cluster.close();
    },
  };
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function stats(broker: Broker, agents: number, clients: number): Omit<SignalingStats, 'instance'> {
  const recent = broker.sessions.recent(1000);
  const setups = recent
    .filter((s) => s.answeredAt !== undefined)
    .map((s) => s.answeredAt! - s.openedAt)
    .sort((a, b) => a - b);
  const failuresByReason: Record<string, number> = {};
  for (const s of recent)
    if (s.failure) failuresByReason[s.failure] = (failuresByReason[s.failure] ?? 0) + 1;
  const conn = { relayed: 0, direct: 0, relayUdp: 0, relayTcp: 0 };
  for (const s of recent) {
    const st = s.clientStats ?? s.agentStats;
    if (!st) continue;
    const relayed = st.localCandidateType === 'relay' || st.remoteCandidateType === 'relay';
    if (relayed) {
      conn.relayed++;
      const r =
        (s.clientStats?.localCandidateType === 'relay' ? s.clientStats : s.agentStats)
          ?.relayProtocol ?? st.protocol;
      if (r === 'udp') conn.relayUdp++;
      else conn.relayTcp++;
    } else conn.direct++;
  }
  return {
    agentsConnected: agents,
    clientsConnected: clients,
    liveSessions: broker.sessions.liveCount,
    sessionsPerMinute: [...broker.perMinute.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([minute, count]) => ({ minute: minute * 60_000, count })),
    setupMs: { p50: pct(setups, 50), p90: pct(setups, 90), p99: pct(setups, 99) },
    failuresByReason,
    connections: conn,
    recent: recent.slice(0, 100).map((s) => ({
      id: s.id,
      service: s.service,
      node: s.shortId,
      openedAt: s.openedAt,
      setupMs: s.answeredAt !== undefined ? s.answeredAt - s.openedAt : null,
      closedAt: s.closedAt ?? null,
      failure: s.failure ?? null,
      agent: s.agentStats ?? null,
      client: s.clientStats ?? null,
    })),
  };
}
