/**
 * Every signaling message that crosses a WebSocket, defined once.
 *
 * Two channels:
 *  - agent ⇄ server on `/ws/agent` (the node agent at home),
 *  - client ⇄ server on `/ws/client` (the browser shell, or the Node tunnel client).
 *
 * Each direction is a discriminated union on `type`, parsed once where it
 * arrives by `parseX()`, which returns a typed value or a typed error; unknown
 * types are reported as such so a receiver can log and ignore them (an old
 * agent survives a newer server). Extra fields are stripped, not rejected,
 * for the same reason.
 *
 * The server stamps who sent a message: no message carries a trustworthy
 * "from" field, and the server never relays one a peer wrote.
 */
import { z } from 'zod';
import { ERROR_CODES, PeerwayError } from './errors';
import { SERVICE_NAME_RE } from './names';

/** Upper bound for one signaling message on the wire, in bytes. */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;
const MAX_SDP_CHARS = 32 * 1024;
const MAX_CANDIDATE_CHARS = 1024;
const MAX_TOKEN_CHARS = 4096;

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/);
const b64url = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9_-]*$/);
const serviceName = z
  .string()
  .regex(SERVICE_NAME_RE, 'service name must be a DNS label: a-z, 0-9, "-"');
const token = z.string().min(1).max(MAX_TOKEN_CHARS);
const sdp = z.string().min(1).max(MAX_SDP_CHARS);
const errorCode = z.enum(ERROR_CODES);
const shortText = z.string().max(500);

export const IceServerSchema = z.object({
  urls: z.union([z.string().max(512), z.array(z.string().max(512)).max(8)]),
  username: z.string().max(512).optional(),
  credential: z.string().max(512).optional(),
});
export type IceServer = z.infer<typeof IceServerSchema>;

/** A trickled ICE candidate, as `RTCIceCandidateInit`; `null` ends gathering. */
export const IceCandidateSchema = z
  .object({
    candidate: z.string().max(MAX_CANDIDATE_CHARS),
    sdpMid: z.string().max(64).nullable().optional(),
    sdpMLineIndex: z.number().int().min(0).max(64).nullable().optional(),
  })
  .nullable();
export type IceCandidate = z.infer<typeof IceCandidateSchema>;

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

const candidateType = z.enum(['host', 'srflx', 'prflx', 'relay', 'unknown']);
const transport = z.enum(['udp', 'tcp', 'tls', 'unknown']);

/** How a peer connection ended up connected, from `getStats()` on either end. */
/**
 * The agent's WebRTC engines: werift (pure TypeScript, runs anywhere, TURN
 * over TCP) and node-datachannel (native, faster; no TURN over TCP).
 */
export const ENGINE_NAMES = ['werift', 'node-datachannel'] as const;
export const EngineNameSchema = z.enum(ENGINE_NAMES);
export type EngineName = z.infer<typeof EngineNameSchema>;

export const ConnectionStatsSchema = z.object({
  localCandidateType: candidateType,
  remoteCandidateType: candidateType,
  protocol: transport,
  /** The transport between this peer and the TURN server, when relayed. */
  relayProtocol: transport.optional(),
  rttMs: z.number().min(0).max(600_000).optional(),
  setupMs: z.number().min(0).max(600_000).optional(),
  bytesSent: z.number().int().min(0).optional(),
  bytesReceived: z.number().int().min(0).optional(),
  /** The agent's engine that served the session (the agent's report only). */
  engine: EngineNameSchema.optional(),
});
export type ConnectionStats = z.infer<typeof ConnectionStatsSchema>;

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
  z.object({
    type: z.literal('answer'),
    sessionId: id,
    sdp,
    /** The engine that answered (passed on to the client). */
    engine: EngineNameSchema.optional(),
  }),
  z.object({ type: z.literal('candidate'), sessionId: id, candidate: IceCandidateSchema }),
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
  z.object({ type: z.literal('candidate'), sessionId: id, candidate: IceCandidateSchema }),
  z.object({ type: z.literal('session-close'), sessionId: id, reason: shortText }),
  z.object({ type: z.literal('error'), code: errorCode, message: shortText }),
]);
export type ServerToAgent = z.infer<typeof ServerToAgentSchema>;

// ---------------------------------------------------------------------------
// client (browser shell or Node tunnel client) → server

export const ClientToServerSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('open'),
    /** Chosen by the client to match the `session` answer to this request. */
    ref: id,
    service: serviceName,
    token,
    /** Nodes (short IDs) to avoid, e.g. the replica that just went away. */
    avoid: z.array(z.string().max(16)).max(16).optional(),
    /**
     * The client's offer, sent with the request: the node hears of the
     * session (and can answer) without waiting for the client to see the
     * `session` reply first. Without it, an `offer` message follows `session`.
     */
    offer: sdp.optional(),
    /**
     * Answer with this engine, if the node has it: the client found that
     * only it can reach this network (werift, for TURN over TCP).
     */
    engine: EngineNameSchema.optional(),
  }),
  z.object({ type: z.literal('offer'), sessionId: id, sdp }),
  z.object({ type: z.literal('candidate'), sessionId: id, candidate: IceCandidateSchema }),
  z.object({ type: z.literal('session-stats'), sessionId: id, stats: ConnectionStatsSchema }),
  z.object({ type: z.literal('close'), sessionId: id }),
  z.object({ type: z.literal('ping') }),
]);
export type ClientToServer = z.infer<typeof ClientToServerSchema>;

// ---------------------------------------------------------------------------
// server → client

export const ServerToClientSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('session'),
    ref: id,
    sessionId: id,
    iceServers: z.array(IceServerSchema).max(8),
    node: z.object({ shortId: z.string(), name: z.string() }),
  }),
  z.object({
    type: z.literal('answer'),
    sessionId: id,
    sdp,
    /** The node's engine that answered, when it said. */
    engine: EngineNameSchema.optional(),
  }),
  z.object({ type: z.literal('candidate'), sessionId: id, candidate: IceCandidateSchema }),
  z.object({
    type: z.literal('session-error'),
    /** The `open` ref, for errors before a session exists. */
    ref: id.optional(),
    sessionId: id.optional(),
    code: errorCode,
    message: shortText,
  }),
  z.object({ type: z.literal('session-close'), sessionId: id, reason: shortText }),
  /**
   * The node's signaling connection dropped. Its data channel may live on
   * (signaling is not on the data path), so this is a hint: check the tunnel
   * now rather than at the next liveness ping.
   */
  z.object({ type: z.literal('node-offline'), sessionId: id }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('error'), code: errorCode, message: shortText }),
]);
export type ServerToClient = z.infer<typeof ServerToClientSchema>;

// ---------------------------------------------------------------------------
// parsing

export type ParseResult<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      error: PeerwayError;
      /** The `type` the message claimed, when it had a string one. */
      claimedType?: string;
      /** True when the message was well-formed JSON of a type this side does not know. */
      unknownType: boolean;
    };

type Raw = string | Buffer | ArrayBuffer | Uint8Array | Buffer[];

function toText(raw: Raw): string {
  if (typeof raw === 'string') return raw;
  const dec = new TextDecoder('utf-8', { fatal: true });
  if (Array.isArray(raw)) {
    const total = raw.reduce((n, b) => n + b.byteLength, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const b of raw) {
      out.set(b, off);
      off += b.byteLength;
    }
    return dec.decode(out);
  }
  return dec.decode(raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw);
}

function byteLength(raw: Raw): number {
  if (typeof raw === 'string') return raw.length * 3; // worst case UTF-8; exact check below
  if (Array.isArray(raw)) return raw.reduce((n, b) => n + b.byteLength, 0);
  return raw.byteLength;
}

function makeParser<T>(schema: z.ZodType<T>, knownTypes: ReadonlySet<string>) {
  return (raw: Raw): ParseResult<T> => {
    const fail = (error: PeerwayError, claimedType?: string, unknownType = false) => ({
      ok: false as const,
      error,
      unknownType,
      ...(claimedType === undefined ? {} : { claimedType }),
    });
    if (byteLength(raw) > MAX_SIGNALING_MESSAGE_BYTES) {
      const bytes =
        typeof raw === 'string' ? new TextEncoder().encode(raw).byteLength : byteLength(raw);
      if (bytes > MAX_SIGNALING_MESSAGE_BYTES) {
        return fail(
          new PeerwayError(
            'message_too_large',
            `message is ${bytes} bytes; the limit is ${MAX_SIGNALING_MESSAGE_BYTES}`,
          ),
        );
      }
    }
    let data: unknown;
    try {
      data = JSON.parse(toText(raw));
    } catch (cause) {
      return fail(new PeerwayError('bad_message', 'message is not valid UTF-8 JSON', { cause }));
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return fail(new PeerwayError('bad_message', 'message must be a JSON object'));
    }
    const type = (data as { type?: unknown }).type;
    if (typeof type !== 'string') {
      return fail(new PeerwayError('bad_message', 'message has no string "type"'));
    }
    const claimedType = type.slice(0, 64);
    if (!knownTypes.has(type)) {
      return fail(
        new PeerwayError('bad_message', `unknown message type "${claimedType}"`),
        claimedType,
        true,
      );
    }
    const result = schema.safeParse(data);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'message';
      return fail(
        new PeerwayError(
          'bad_message',
          `invalid "${claimedType}" message: ${where}: ${issue?.message ?? 'invalid'}`,
        ),
        claimedType,
      );
    }
    return { ok: true, value: result.data };
  };
}

function typesOf(schema: {
  options: readonly { shape: { type: { value: string } } }[];
}): Set<string> {
  return new Set(schema.options.map((o) => o.shape.type.value));
}

/** Parses a message an agent sent to the server. */
export const parseAgentToServer = makeParser(AgentToServerSchema, typesOf(AgentToServerSchema));
/** Parses a message the server sent to an agent. */
export const parseServerToAgent = makeParser(ServerToAgentSchema, typesOf(ServerToAgentSchema));
/** Parses a message a client sent to the server. */
export const parseClientToServer = makeParser(ClientToServerSchema, typesOf(ClientToServerSchema));
/** Parses a message the server sent to a client. */
export const parseServerToClient = makeParser(ServerToClientSchema, typesOf(ServerToClientSchema));

/** Serialises a signaling message (the one place messages become text). */
export function encodeMessage(
  msg: AgentToServer | ServerToAgent | ClientToServer | ServerToClient,
): string {
  return JSON.stringify(msg);
}
