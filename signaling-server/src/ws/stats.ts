/**
 * The admin view of signaling on this instance: connections, sessions and
 * their setup times, failures, how sessions connected (direct or relayed,
 * UDP or TCP), per-minute series over the last hour, and nodes that turned
 * unhealthy.
 */
import type { ConnectionStats } from '@peerway/protocol';
import type { AgentConnection } from './agent-handler';
import type { Broker } from './broker';
import type { PeerInstance } from './cluster';
import type { SignalingMetrics } from './metrics';

/** How long a node that went offline stays on the alert list (unless it comes back). */
export const OFFLINE_ALERT_MS = 60 * 60_000;
/** Reported CPU (cores) above which a node counts as overloaded. */
export const BUSY_CPU = 0.9;
/** Failed sessions to one node within FAILING_WINDOW_MS that make it an alert. */
export const FAILING_SESSIONS = 3;
export const FAILING_WINDOW_MS = 10 * 60_000;

export interface Point {
  at: number;
  count: number;
}

export interface Alert {
  kind: 'offline' | 'busy' | 'failing';
  shortId: string;
  name: string;
  since: number;
  detail: string;
}

export interface SignalingStats {
  /** This instance, how many are alive in the cluster (1 without Redis), and the others' counts. */
  instance: { id: string; instances: number; agentsElsewhere: number; peers: PeerInstance[] };
  at: number;
  agentsConnected: number;
  clientsConnected: number;
  liveSessions: number;
  /** Per minute, the last hour, oldest first. */
  series: { sessions: Point[]; failures: Point[]; messages: Point[]; errors: Point[] };
  setupMs: { p50: number | null; p90: number | null; p99: number | null };
  failuresByReason: Record<string, number>;
  /** Of the recent sessions that reported how they connected. */
  connections: { relayed: number; direct: number; relayUdp: number; relayTcp: number };
  turn: {
    configured: boolean;
    /** Relayed share of recent connected sessions, 0..1 (null: none yet). */
    relayedShare: number | null;
    /** Bytes the relayed sessions moved, as their ends reported. */
    relayedBytes: number;
  };
  alerts: Alert[];
  recent: {
    id: string;
    service: string;
    node: string;
    openedAt: number;
    /** The engine the client asked for (null: the node's default). */
    askedEngine: string | null;
    setupMs: number | null;
    closedAt: number | null;
    failure: string | null;
    agent: ConnectionStats | null;
    client: ConnectionStats | null;
  }[];
}

/** Nodes that went offline (and have not come back). */
export class Health {
  private readonly offline = new Map<string, { shortId: string; name: string; at: number }>();

  constructor(private readonly now: () => number) {}

  wentOffline(a: Pick<AgentConnection, 'nodeId' | 'shortId' | 'name'>, at: number): void {
    this.offline.set(a.nodeId, { shortId: a.shortId, name: a.name, at });
  }

  cameOnline(nodeId: string): void {
    this.offline.delete(nodeId);
  }

  recentOffline(): { shortId: string; name: string; at: number }[] {
    const now = this.now();
    for (const [id, o] of this.offline) if (now - o.at > OFFLINE_ALERT_MS) this.offline.delete(id);
    return [...this.offline.values()];
  }
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const isRelayed = (st: ConnectionStats) =>
  st.localCandidateType === 'relay' || st.remoteCandidateType === 'relay';

export function signalingStats(o: {
  broker: Broker;
  metrics: SignalingMetrics;
  health: Health;
  agents: AgentConnection[];
  clients: number;
  now: number;
  turnConfigured: boolean;
}): Omit<SignalingStats, 'instance'> {
  const recent = o.broker.sessions.recent(1000);
  const setups = recent
    .filter((s) => s.answeredAt !== undefined)
    .map((s) => s.answeredAt! - s.openedAt)
    .sort((a, b) => a - b);
  const failuresByReason: Record<string, number> = {};
  for (const s of recent)
    if (s.failure) failuresByReason[s.failure] = (failuresByReason[s.failure] ?? 0) + 1;

  const conn = { relayed: 0, direct: 0, relayUdp: 0, relayTcp: 0 };
  let relayedBytes = 0;
  for (const s of recent) {
    const st = s.clientStats ?? s.agentStats;
    if (!st) continue;
    if (isRelayed(st)) {
      conn.relayed++;
      // The side that holds the allocation knows whether it talks to TURN over UDP or TCP.
      const holder = s.clientStats?.localCandidateType === 'relay' ? s.clientStats : s.agentStats;
      const proto = holder?.relayProtocol ?? st.protocol;
      if (proto === 'udp') conn.relayUdp++;
      else conn.relayTcp++;
      relayedBytes += (st.bytesSent ?? 0) + (st.bytesReceived ?? 0);
    } else conn.direct++;
  }
  const connected = conn.relayed + conn.direct;

  const alerts: Alert[] = o.health.recentOffline().map((x) => ({
    kind: 'offline',
    shortId: x.shortId,
    name: x.name,
    since: x.at,
    detail: 'went offline',
  }));
  for (const a of o.agents) {
    if (a.load && a.load.cpu >= BUSY_CPU)
      alerts.push({
        kind: 'busy',
        shortId: a.shortId,
        name: a.name,
        since: o.now,
        detail: `CPU ${Math.round(a.load.cpu * 100)}% with ${a.load.sessions} sessions`,
      });
  }
  const failing = new Map<string, { n: number; first: number }>();
  for (const s of recent) {
    if (!s.failure || s.openedAt < o.now - FAILING_WINDOW_MS) continue;
    const f = failing.get(s.shortId) ?? { n: 0, first: s.openedAt };
    f.n++;
    f.first = Math.min(f.first, s.openedAt);
    failing.set(s.shortId, f);
  }
  for (const [shortId, f] of failing) {
    if (f.n < FAILING_SESSIONS) continue;
    const name = o.agents.find((a) => a.shortId === shortId)?.name ?? '';
    alerts.push({
      kind: 'failing',
      shortId,
      name,
      since: f.first,
      detail: `${f.n} failed sessions in the last ${FAILING_WINDOW_MS / 60_000} minutes`,
    });
  }

  const pm = o.metrics.perMinute;
  return {
    at: o.now,
    agentsConnected: o.agents.length,
    clientsConnected: o.clients,
    liveSessions: o.broker.sessions.liveCount,
    series: {
      sessions: pm.sessions.points(),
      failures: pm.failures.points(),
      messages: pm.messages.points(),
      errors: pm.errors.points(),
    },
    setupMs: { p50: pct(setups, 50), p90: pct(setups, 90), p99: pct(setups, 99) },
    failuresByReason,
    connections: conn,
    turn: {
      configured: o.turnConfigured,
      relayedShare: connected ? conn.relayed / connected : null,
      relayedBytes,
    },
    alerts,
    recent: recent.slice(0, 100).map((s) => ({
      id: s.id,
      service: s.service,
      node: s.shortId,
      openedAt: s.openedAt,
      askedEngine: s.askedEngine ?? null,
      setupMs: s.answeredAt !== undefined ? s.answeredAt - s.openedAt : null,
      closedAt: s.closedAt ?? null,
      failure: s.failure ?? null,
      agent: s.agentStats ?? null,
      client: s.clientStats ?? null,
    })),
  };
}
