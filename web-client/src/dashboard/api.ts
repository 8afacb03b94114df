/** The gateway's JSON API, with its error shape turned into exceptions. */
import type {
  ContainerRuntime,
  DeploymentSpec,
  NodeResources,
  ReplicaResources,
  ReplicaState,
  SpecError,
} from '@peerway/protocol';

export type { SpecError };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The whole error answer, for routes that say more (a spec's `errors`). */
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return send<T>(
    path,
    method,
    body !== undefined ? { 'content-type': 'application/json' } : {},
    body !== undefined ? JSON.stringify(body) : undefined,
  );
}

/** Sends text as it is (a YAML spec) with its content type. */
export async function apiText<T = unknown>(
  method: string,
  path: string,
  text: string,
  contentType: string,
): Promise<T> {
  return send<T>(path, method, { 'content-type': contentType }, text);
}

async function send<T>(
  path: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<T> {
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const json = (await res.json().catch(() => ({}))) as {
    error?: { code: string; message: string };
  };
  if (!res.ok)
    throw new ApiError(
      res.status,
      json.error?.code ?? 'internal',
      json.error?.message ?? `the server answered ${res.status}`,
      json as Record<string, unknown>,
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
  /** The agent's last report (capacity, the owner's caps, labels), or null before one. */
  resources?: NodeResources | null;
  /** What deployments may use in all: the smaller of capacity and the owner's caps. */
  deployable?: ReplicaResources | null;
  /** What the replicas placed on it hold. */
  allocated?: ReplicaResources | null;
  labels?: Record<string, string>;
  runtime?: ContainerRuntime | null;
  /** Its owner started the agent with --deployments. */
  deployments?: boolean;
  /** Emails of the users its owner lets deploy to it. */
  deployers?: string[];
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

/** A replica as GET /api/deployments/:name shows it (`id` and `node` null while it fits nowhere). */
export interface ReplicaView {
  id: string | null;
  /** The node's short ID. */
  node: string | null;
  state: ReplicaState;
  reason?: string;
  since: number;
  /** `stop` while its node is stopping it. */
  desired?: 'run' | 'stop';
  failures?: number;
}

export interface DeploymentEventView {
  at: number;
  kind: string;
  message: string;
  allocation: string | null;
}

/** Why replicas fit on no node: per node, in words. */
export interface PendingView {
  replicas: number;
  reasons: { node: string; code: string; message: string }[];
  /** Nodes neither the caller's nor granted to them: counted, not named. */
  otherNodes: number;
  lines: string[];
}

/** GET /api/deployments/:name (events only there, not in the list). */
export interface DeploymentView {
  name: string;
  url?: string;
  spec: DeploymentSpec;
  desired?: number;
  running?: number;
  replicas: ReplicaView[];
  pending?: PendingView | null;
  events?: DeploymentEventView[];
  createdAt?: number;
  updatedAt?: number;
}

/** A plan, as POST /api/deployments answers it (with `?dryRun=1`, only that). */
export interface PlanView {
  deployment: string;
  desired: number;
  keep: { allocation: string; node: string }[];
  place: { node: string; resources: ReplicaResources; replaces?: string | null }[];
  stop: { allocation: string; node: string; reason: string; message?: string }[];
  unplaced: number;
  reasons: { node: string; code: string; message: string }[];
  otherNodes: number;
  changed?: boolean;
  lines: string[];
}

export interface ApplyView {
  created: boolean;
  dryRun: boolean;
  plan: PlanView;
  deployment: DeploymentView | null;
  pending: PendingView | null;
  warnings?: string[];
}
