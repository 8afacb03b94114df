/**
 * WebSocket signaling: `/ws/agent` for node agents, `/ws/client` for browser
 * shells and Node tunnel clients. This is the server's only upgrade
 * handler: an upgrade on any other path (or for a Host the server does not
 * answer) is refused with a status line and its socket destroyed at once, so
 * no stranger can park sockets here. (Visitors' own WebSockets never reach
 * the server: the shell carries them over the data channel.)
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
  type NodeLoad,
  type ServerToClient,
} from '@peerway/protocol';
import type { Store, User } from '../store/store';
import type { Logger } from '../logger';
import { AgentConnection, type AgentJobs, type AgentRegistry } from './agent-handler';
import { Broker, type ClientPeer } from './broker';
import { systemClock, type Clock } from './clock';
import type { SignalingConfig, SignalingContext } from './context';
import { PerKeyRate } from './limits';
import { createMetrics } from './metrics';
import { Health, signalingStats, type SignalingStats } from './stats';
import { CloseCode, Peer } from './peer';
import { watchClient } from './client-timeouts';
import { Presence } from './presence';
import { LocalCluster, type AgentInfo, type Cluster, type ClusterHandlers } from './cluster';
import { RedisCluster } from './redis-cluster';
import { Deployments, DEFAULT_RESCHEDULE_AFTER_MS } from '../cluster/deployments';
import { serviceOrigin } from '../web/service-origin';

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
  /**
   * Whether the server answers this Host header at all (the HTTP app's own
   * allow-list, against DNS rebinding); without it every Host is taken.
   */
  hostAllowed?(host: string | undefined): boolean;
  /** The jobs broker agents' job messages go to; without it they are refused. */
  jobs?: AgentJobs;
}

/** Unanswered ws pings in a row after which a socket counts as dead (one per ping interval). */
const DEAD_AFTER_MISSED_PINGS = 3;
/** How long a refused upgrade's answer may take to be written before its socket goes anyway. */
const REFUSED_UPGRADE_LINGER_MS = 1000;

/** Answers an upgrade that will not become a WebSocket, and drops its socket now. */
function refuseUpgrade(socket: Duplex, status: string): void {
  // Destroyed as soon as the answer is written, not left to the peer: an
  // upgrade nobody takes is never closed by node's HTTP server, and end()
  // alone waits for a FIN that a hostile peer never sends.
  const destroy = () => void socket.destroy();
  setTimeout(destroy, REFUSED_UPGRADE_LINGER_MS).unref();
  if (!socket.writable) return destroy();
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, destroy);
}

export type { SignalingStats } from './stats';

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
  /**
   * A service's access, shares or serving grants changed (HTTP): on every
   * instance, agents announcing it are re-evaluated and live sessions that
   * lost their right are closed.
   */
  onServiceChanged(name: string): void;
  /** Resolves once the cluster (if any) is listening. */
  ready: Promise<void>;
  stats(): SignalingStats;
  /** The load a node reported last (wherever it is connected). */
  load(nodeId: string): NodeLoad | undefined;
  /** The cluster's server side: deployments, their replicas, the reconciler loop. */
  deployments: Deployments;
  close(): Promise<void>;
}

/** Attaches signaling to an HTTP server. */
export function attachSignaling(httpServer: Server, deps: SignalingDeps): Signaling {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger;
  const metrics = createMetrics(
    {
      instances: () => cluster.instanceCount(),
      agentsElsewhere: () => cluster.remoteAgentCount(),
    },
    () => clock.now(),
  );
  const health = new Health(() => clock.now());
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
    privateServices: a.announced
      .filter((x) => !x.public && a.accepted.has(x.name))
      .map((x) => x.name),
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
    message: (m) => {
      if (m.kind === 'allocations-changed') void agents.get(m.nodeId)?.sendAllocations();
      else broker.fromCluster(m);
    },
    remoteAgentGone: (nodeId) => {
      if (agents.has(nodeId)) return;
      broker.nodeGone(nodeId);
      deployments.nodeOffline(nodeId);
    },
    agentElsewhere: (remote) => {
      deployments.nodeOnline(remote.nodeId);
      broker.loadReported(remote.nodeId);
      const local = agents.get(remote.nodeId);
      if (local && local.connectedAt <= remote.connectedAt)
        local.peer.close(CloseCode.REPLACED, 'another connection of this node took over');
    },
    serviceChanged: (name) => {
      void (async () => {
        for (const a of agents.values())
          if (a.announced.some((x) => x.name === name)) await a.evaluateServices();
        await broker.serviceChanged(name);
      })().catch((err: unknown) => log.warn({ err }, 'could not apply a service change'));
    },
    nodeChanged: (nodeId, change) => {
      // Sessions live on their client's instance: each one ends its own.
      if (change === 'removed') broker.nodeRemoved(nodeId);
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
    cluster,
    serverKeys: deps.serverKeys,
    authenticateBearer: deps.authenticateBearer,
  };
  const broker = new Broker(ctx, agents);
  const deployments = new Deployments({
    store: deps.store,
    clock,
    log: log.child({ part: 'deployments' }),
    isOnline: (id) => presence.isOnline(id) || cluster.remoteAgent(id) !== undefined,
    isDraining: (id) => agents.get(id)?.draining ?? cluster.remoteAgent(id)?.draining ?? false,
    rescheduleAfterMs: deps.config.rescheduleAfterMs ?? DEFAULT_RESCHEDULE_AFTER_MS,
    // Each node's set goes to its agent here, or to the instance holding it.
    deliver: (nodeIds) => {
      for (const id of nodeIds) {
        const local = agents.get(id);
        const remote = local ? undefined : cluster.remoteAgent(id);
        if (local) void local.sendAllocations();
        else if (remote) cluster.send(remote.instance, { kind: 'allocations-changed', nodeId: id });
      }
    },
    servingChanged: (name) => cluster.broadcastServiceChanged(name),
    serviceUrl: (name) => `${serviceOrigin(deps.config, name)}/`,
    // A lost nudge between instances is made good at the next pass.
    afterPass: () => {
      for (const a of agents.values()) void a.sendAllocations(true);
    },
  });
  deployments.start();
  const registry: AgentRegistry = {
    register(a) {
      const old = agents.get(a.nodeId);
      if (old && old !== a)
        old.peer.close(CloseCode.REPLACED, 'another connection of this node took over');
      agents.set(a.nodeId, a);
      deployments.nodeOnline(a.nodeId);
      health.cameOnline(a.nodeId);
      presence.connected(a.nodeId, a.onPresenceTimeout);
      metrics.agents.set(agents.size);
      cluster.publishAgent(info(a));
    },
    unregister(a) {
      if (agents.get(a.nodeId) !== a) return;
      agents.delete(a.nodeId);
      presence.disconnected(a.nodeId, a.onPresenceTimeout);
      metrics.agents.set(agents.size);
      cluster.withdrawAgent(a.nodeId, a.connectedAt);
      health.wentOffline(a, clock.now());
      // Reconnected through another instance already? Then it is not gone.
      if (!cluster.remoteAgent(a.nodeId)) {
        broker.nodeGone(a.nodeId);
        deployments.nodeOffline(a.nodeId);
      }
      log.info({ node: a.shortId }, 'agent disconnected');
    },
    updated(a) {
      if (agents.get(a.nodeId) !== a) return;
      broker.loadReported(a.nodeId);
      cluster.publishAgent(info(a));
    },
  };
  presence.start();

  // The hard cap closes the socket (1009); below it, oversized messages get an error.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * MAX_SIGNALING_MESSAGE_BYTES });
  const ipRate = new PerKeyRate(deps.config.limits.connectionsPerMinutePerIp, clock);

  // Dead-socket detection below the heartbeat: ws pings. Transport-level, so
  // on real timers even when the presence clock is injected. A socket goes
  // after DEAD_AFTER_MISSED_PINGS unanswered pings in a row, not one: a busy
  // agent (its event loop held a second by a burst of sessions) is not dead.
  const pingEveryMs = Math.max(1000, deps.config.heartbeatIntervalMs);
  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      const w = ws as WebSocket & { missed?: number };
      w.missed = (w.missed ?? 0) + 1;
      if (w.missed > DEAD_AFTER_MISSED_PINGS) {
        w.terminate();
        continue;
      }
      w.ping();
    }
  }, pingEveryMs);
  pinger.unref();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws/agent' && path !== '/ws/client')
      return refuseUpgrade(socket, '404 Not Found');
    if (deps.hostAllowed && !deps.hostAllowed(req.headers.host))
      return refuseUpgrade(socket, '421 Misdirected Request');
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (!ipRate.hit(ip)) return refuseUpgrade(socket, '429 Too Many Requests');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const w = ws as WebSocket & { missed?: number };
      w.missed = 0;
      ws.on('pong', () => (w.missed = 0));
      if (path === '/ws/agent') {
        const peer = new Peer<AgentToServer, ServerToAgent>(
          ws,
          ip,
          'agent',
          parseAgentToServer,
          log.child({ side: 'agent' }),
          metrics,
          {
            ...deps.config.limits,
            messagesPerSecond: deps.config.limits.agentMessagesPerSecond,
            messageBurst: deps.config.limits.agentMessageBurst,
          },
          clock,
        );
        new AgentConnection(peer, ctx, broker, registry, deployments, deps.jobs).start();
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
        const unwatch = watchClient(
          peer,
          () => broker.sessions.of((s) => s.clientKey === peer).length > 0,
          deps.config.limits,
          clock,
        );
        ws.on('close', () => {
          unwatch();
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
    onServiceChanged: (name) => cluster.broadcastServiceChanged(name),
    stats: (): SignalingStats => ({
      instance: {
        id: cluster.instanceId,
        instances: cluster.instanceCount(),
        agentsElsewhere: cluster.remoteAgentCount(),
        peers: cluster.peers(),
      },
      ...signalingStats({
        broker,
        metrics,
        health,
        agents: [...agents.values()],
        clients: clients.size,
        now: clock.now(),
        turnConfigured: deps.config.turnUrls.length > 0,
      }),
    }),
    load: (nodeId) => agents.get(nodeId)?.load ?? cluster.remoteAgent(nodeId)?.load,
    deployments,
    async close() {
      await deployments.stop();
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
