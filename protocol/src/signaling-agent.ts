/**
 * The agent's signaling channel (`/ws/agent`): agent → server and
 * server → agent, defined and parsed as ./signaling-client.ts does the
 * client's. Its own module so the browser's bundle leaves it out.
 */
import { z } from 'zod';
import {
  AnswerMessageSchema,
  CandidateMessageSchema,
  ConnectionStatsSchema,
  EngineNameSchema,
  IceServerSchema,
} from './signaling-shared';
import { b64url, errorCode, id, sdp, serviceName, shortText, token } from './signaling-fields';
import { makeParser, typesOf } from './signaling-parse';
import { DeploymentSpecSchema, REPLICA_STATES } from './deploy/spec';
import { NodeResourcesSchema } from './deploy/resources';
import { JOB_TYPES, JobRequirementsSchema, MAX_JOB_TIMEOUT_S } from './jobs/spec';
import { MAX_WORKER_CONCURRENCY, WorkerCapabilitiesSchema } from './jobs/worker';

/** A lease's inline input is at most this (JSON bytes); a larger one is fetched over HTTP. */
export const MAX_LEASE_INLINE_INPUT_BYTES = 32 * 1024;
/** A `job-result`'s inline output is at most this; a larger one is uploaded over HTTP first. */
export const MAX_RESULT_INLINE_OUTPUT_BYTES = 48 * 1024;

const jobRef = { id, attempt: z.number().int().min(1).max(1000) };

/** What an agent says about one service. Never the upstream address. */
export const ServiceAnnouncementSchema = z.object({
  name: serviceName,
  /** The owner's wish that anyone may open it; the server's access setting wins. */
  public: z.boolean().default(false),
  description: z.string().max(200).optional(),
});
export type ServiceAnnouncement = z.infer<typeof ServiceAnnouncementSchema>;

/** Load an agent reports in its heartbeats (used for replica routing). */
export const NodeLoadSchema = z.object({
  sessions: z.number().int().min(0).max(1_000_000),
  /** Process CPU use over the last interval, 0..1 per core summed (may exceed 1). */
  cpu: z.number().min(0).max(1024),
  rssBytes: z.number().int().min(0),
  txBytesPerSec: z.number().min(0),
  rxBytesPerSec: z.number().min(0),
});
export type NodeLoad = z.infer<typeof NodeLoadSchema>;

/**
 * One replica the server wants a node to run (the cluster). The server sends
 * a node its whole desired set every time (`allocations`), never a delta: the
 * agent runs what is listed and stops every container of its own
 * (`peerway.node` label) that is not, so a lost message or a restart of
 * either side cannot leave a replica running that nobody wants.
 */
export const AllocationAssignmentSchema = z.object({
  /** The replica's id (`peerway.allocation` label). */
  id,
  /** The deployment's name, which is also the service name it is served as. */
  deployment: serviceName,
  /** The spec as the server parsed it; the agent parses it again and refuses what fails. */
  spec: DeploymentSpecSchema,
  /** Bumped by the server on every change of this allocation. */
  version: z.number().int().nonnegative(),
});
export type AllocationAssignment = z.infer<typeof AllocationAssignmentSchema>;

/** A replica's state as the node sees it. */
export const AllocationReportSchema = z.object({
  id,
  state: z.enum(REPLICA_STATES),
  /** In words, for the owner: "pulling 127.0.0.1:5000/web:1", "exited with code 3". */
  reason: shortText.optional(),
  exitCode: z.number().int().optional(),
});
export type AllocationReport = z.infer<typeof AllocationReportSchema>;

// ---------------------------------------------------------------------------
// agent → server

export const AgentToServerSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('auth'),
    /** The node's Ed25519 public key, base64url (32 bytes). */
    nodeId: b64url.min(43).max(43),
    /** Unix ms at signing; the server refuses proofs outside its clock skew. */
    timestamp: z.number().int().positive(),
    /** Signature over `challengePayload(serverUrl, nonce, timestamp, nodeId)`. */
    signature: b64url.min(86).max(86),
    name: z.string().min(1).max(64),
    version: z.string().max(32).default('0'),
    services: z.array(ServiceAnnouncementSchema).max(64).default([]),
    /** A user's access token: claims the node for that user on first use. */
    token: token.optional(),
    /** A node-signed claim token, so the server can issue a short claim link. */
    claimToken: token.optional(),
  }),
  z.object({ type: z.literal('heartbeat'), load: NodeLoadSchema.optional() }),
  z.object({ type: z.literal('services'), services: z.array(ServiceAnnouncementSchema).max(64) }),
  z.object({ type: z.literal('drain'), draining: z.boolean() }),
  /** The node's capacity, the owner's caps and labels; after `welcome` and when they change. */
  z.object({ type: z.literal('resources'), resources: NodeResourcesSchema }),
  /** States of the replicas it runs (changes, or all of them after `allocations`). */
  z.object({
    type: z.literal('allocation-status'),
    allocations: z.array(AllocationReportSchema).max(256),
  }),
  /** The node takes jobs with these connectors (null: it stops taking jobs). */
  z.object({ type: z.literal('worker'), capabilities: WorkerCapabilitiesSchema.nullable() }),
  /** Its free job slots now (level-triggered: replaces the last count). */
  z.object({
    type: z.literal('job-pull'),
    free: z.number().int().min(0).max(MAX_WORKER_CONCURRENCY),
  }),
  /** Keeps these leases alive; sent at a third of the lease time. */
  z.object({
    type: z.literal('job-heartbeat'),
    leases: z.array(z.object(jobRef)).max(MAX_WORKER_CONCURRENCY),
  }),
  /** The connector began the work (leased → running). */
  z.object({ type: z.literal('job-started'), ...jobRef }),
  z.object({
    type: z.literal('job-progress'),
    ...jobRef,
    value: z.number().finite().optional(),
    max: z.number().finite().optional(),
    message: shortText.optional(),
  }),
  /**
   * The attempt succeeded. `output` inline when it is small; otherwise the
   * agent uploaded it (PUT /api/agent/jobs/:id/output) and says so. Files
   * are uploaded before this message.
   */
  z.object({
    type: z.literal('job-result'),
    ...jobRef,
    output: z.unknown().optional(),
    outputUploaded: z.boolean().default(false),
  }),
  /** The attempt failed; `retryable: false` sends it to the dead letter at once. */
  z.object({
    type: z.literal('job-failed'),
    ...jobRef,
    error: shortText,
    retryable: z.boolean().default(true),
  }),
  AnswerMessageSchema,
  CandidateMessageSchema,
  z.object({
    type: z.literal('session-reject'),
    sessionId: id,
    code: errorCode,
    message: shortText,
  }),
  z.object({ type: z.literal('session-closed'), sessionId: id, reason: shortText.optional() }),
  z.object({ type: z.literal('session-stats'), sessionId: id, stats: ConnectionStatsSchema }),
]);
export type AgentToServer = z.infer<typeof AgentToServerSchema>;

// ---------------------------------------------------------------------------
// server → agent

const serviceStatus = z.object({
  name: serviceName,
  accepted: z.boolean(),
  reason: shortText.optional(),
  /** The service's public URL, as the server routes it (base domain included). */
  url: z.string().max(512).optional(),
});

export const ServerToAgentSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('challenge'),
    nonce: b64url.min(16),
    /** The server's public URL the proof is bound to. */
    serverUrl: z.string().max(512),
  }),
  z.object({
    type: z.literal('welcome'),
    nodeId: b64url,
    shortId: z.string(),
    claimed: z.boolean(),
    owner: z.string().max(320).optional(),
    claimUrl: z.string().max(4096).optional(),
    shortClaimUrl: z.string().max(512).optional(),
    /** Public JWK the server signs service access tokens with. */
    serverKey: z.record(z.string(), z.unknown()),
    /** `iss` of service access tokens. */
    tokenIssuer: z.string().max(512),
    heartbeatIntervalMs: z.number().int().positive(),
    services: z.array(serviceStatus),
  }),
  z.object({ type: z.literal('claimed'), owner: z.string().max(320) }),
  z.object({ type: z.literal('services-ack'), services: z.array(serviceStatus) }),
  z.object({ type: z.literal('heartbeat-ack'), serverTime: z.number() }),
  /** Every replica this node should run now (see AllocationAssignmentSchema). */
  z.object({
    type: z.literal('allocations'),
    allocations: z.array(AllocationAssignmentSchema).max(256),
  }),
  z.object({
    type: z.literal('session'),
    sessionId: id,
    service: serviceName,
    /** The service access token the client presented; the agent verifies it itself. */
    token,
    iceServers: z.array(IceServerSchema).max(8),
    offer: sdp,
    /** The client's wish (see `open`): answer with this engine if the node has it. */
    engine: EngineNameSchema.optional(),
  }),
  /**
   * A job for one of the worker's free slots. `input` is inline when small,
   * else fetched with the lease token (GET /api/agent/jobs/:id/input). The
   * token authorizes this attempt's HTTP uploads only, and dies with it.
   */
  z.object({
    type: z.literal('job-lease'),
    ...jobRef,
    jobType: z.enum(JOB_TYPES),
    input: z.unknown().optional(),
    inputUrl: z.string().max(512).optional(),
    requirements: JobRequirementsSchema,
    timeoutS: z.number().int().min(1).max(MAX_JOB_TIMEOUT_S),
    /** The lease lapses this long after the last heartbeat. */
    leaseMs: z.number().int().positive(),
    leaseToken: token,
  }),
  /** Stop this attempt now: cancelled by the submitter, timed out, or its lease lost. */
  z.object({ type: z.literal('job-cancel'), ...jobRef, reason: shortText }),
  CandidateMessageSchema,
  z.object({ type: z.literal('session-close'), sessionId: id, reason: shortText }),
  z.object({ type: z.literal('error'), code: errorCode, message: shortText }),
]);
export type ServerToAgent = z.infer<typeof ServerToAgentSchema>;

/** Parses a message an agent sent to the server. */
export const parseAgentToServer = makeParser(AgentToServerSchema, typesOf(AgentToServerSchema));
/** Parses a message the server sent to an agent. */
export const parseServerToAgent = makeParser(ServerToAgentSchema, typesOf(ServerToAgentSchema));
