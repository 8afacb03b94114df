/** Prometheus figures for signaling (prom-client), one registry per server. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PerMinute } from './series';

/** Figures read at scrape time (the cluster's view changes without an event). */
export interface ClusterFigures {
  instances(): number;
  agentsElsewhere(): number;
}

export function createMetrics(
  cluster: ClusterFigures = { instances: () => 1, agentsElsewhere: () => 0 },
  now: () => number = Date.now,
) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'peerway_' });
  const m = {
    registry,
    /** The same figures per minute over the last hour, for the admin charts. */
    perMinute: {
      messages: new PerMinute(now),
      errors: new PerMinute(now),
      sessions: new PerMinute(now),
      failures: new PerMinute(now),
    },
    agents: new Gauge({
      name: 'peerway_agents_connected',
      help: 'Agents connected and authenticated',
      registers: [registry],
    }),
    clients: new Gauge({
      name: 'peerway_clients_connected',
      help: 'Browser/Node clients connected',
      registers: [registry],
    }),
    sessionsOpened: new Counter({
      name: 'peerway_sessions_opened_total',
      help: 'Sessions brokered',
      registers: [registry],
    }),
    sessionsFailed: new Counter({
      name: 'peerway_sessions_failed_total',
      help: 'Session requests that failed, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    sessionsByType: new Counter({
      name: 'peerway_sessions_connected_total',
      help: 'Sessions by how they connected (host, srflx, relay) and transport',
      labelNames: ['candidate', 'protocol'] as const,
      registers: [registry],
    }),
    setupSeconds: new Histogram({
      name: 'peerway_session_setup_seconds',
      help: 'From open to answer relayed',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    messages: new Counter({
      name: 'peerway_signaling_messages_total',
      help: 'Signaling messages received',
      labelNames: ['side'] as const,
      registers: [registry],
    }),
    badMessages: new Counter({
      name: 'peerway_signaling_bad_messages_total',
      help: 'Signaling messages refused',
      labelNames: ['side', 'code'] as const,
      registers: [registry],
    }),
    instances: new Gauge({
      name: 'peerway_cluster_instances',
      help: 'Server instances alive in the cluster, this one included (1 without Redis)',
      registers: [registry],
      collect() {
        this.set(cluster.instances());
      },
    }),
    agentsElsewhere: new Gauge({
      name: 'peerway_cluster_agents_elsewhere',
      help: 'Agents online through other instances',
      registers: [registry],
      collect() {
        this.set(cluster.agentsElsewhere());
      },
    }),
  };
  return m;
}

export type SignalingMetrics = ReturnType<typeof createMetrics>;
