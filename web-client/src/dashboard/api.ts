/** The gateway's JSON API, with its error shape turned into exceptions. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json().catch(() => ({}))) as {
    error?: { code: string; message: string };
  };
  if (!res.ok)
    throw new ApiError(
      res.status,
      json.error?.code ?? 'internal',
      json.error?.message ?? `the server answered ${res.status}`,
    );
  return json as T;
}

export interface Me {
  id: string;
  email: string;
  isAdmin: boolean;
}

export interface NodeLoad {
  sessions: number;
  cpu: number;
  rssBytes: number;
  txBytesPerSec: number;
  rxBytesPerSec: number;
}

export interface NodeView {
  id: string;
  shortId: string;
  name: string;
  online: boolean;
  lastSeen: number;
  isPublic: boolean;
  load: NodeLoad | null;
  services: { name: string; url: string; access: Access; description: string | null }[];
}

export type Access = 'private' | 'public' | 'shared';

export interface ServiceView {
  name: string;
  url: string;
  access: Access;
  sharedWith: string[];
  /** Users whose nodes may serve it besides the owner's (a grant apart from sharing). */
  servedBy: string[];
  nodes: number;
  online: boolean;
}

/** The signed-in user, or null. */
export async function me(): Promise<Me | null> {
  try {
    return (await api<{ user: Me }>('GET', '/api/me')).user;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export interface Point {
  at: number;
  count: number;
}

interface ConnectionStats {
  localCandidateType: string;
  remoteCandidateType: string;
  protocol: string;
  relayProtocol?: string;
  /** The node's engine that answered (the node's report only). */
  engine?: string;
}

/** GET /api/admin/signaling (the server's SignalingStats plus TURN health). */
export interface AdminView {
  instance: {
    id: string;
    instances: number;
    agentsElsewhere: number;
    peers: { id: string; agents?: number; clients?: number; sessions?: number }[];
  };
  agentsConnected: number;
  clientsConnected: number;
  liveSessions: number;
  series: { sessions: Point[]; failures: Point[]; messages: Point[]; errors: Point[] };
  setupMs: { p50: number | null; p90: number | null; p99: number | null };
  failuresByReason: Record<string, number>;
  connections: { relayed: number; direct: number; relayUdp: number; relayTcp: number };
  turn: {
    configured: boolean;
    relayedShare: number | null;
    relayedBytes: number;
    probes: { url: string; ok: boolean; rttMs: number | null; error: string | null; at: number }[];
    coturn: { activeAllocations: number; relayedBytes: number; lastEventAt: number | null } | null;
  };
  alerts: { kind: string; shortId: string; name: string; since: number; detail: string }[];
  recent: {
    id: string;
    service: string;
    node: string;
    openedAt: number;
    setupMs: number | null;
    closedAt: number | null;
    failure: string | null;
    agent: ConnectionStats | null;
    client: ConnectionStats | null;
  }[];
}
