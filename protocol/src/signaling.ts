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
 *
 * The agent's channel is in ./signaling-agent.ts: a module of its own, so
 * that the browser's bundle (which never speaks it) leaves its schemas out
 * and does not spend the page's main thread building them.
 */
import { z } from 'zod';
import type { AgentToServer, ServerToAgent } from './signaling-agent';
import {
  MAX_CANDIDATE_CHARS,
  errorCode,
  id,
  sdp,
  serviceName,
  shortText,
  token,
} from './signaling-fields';
import { makeParser, typesOf } from './signaling-parse';

export { MAX_SIGNALING_MESSAGE_BYTES } from './signaling-fields';
export type { ParseResult } from './signaling-parse';

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

const candidateType = z.enum(['host', 'srflx', 'prflx', 'relay', 'unknown']);
const transport = z.enum(['udp', 'tcp', 'tls', 'unknown']);

/**
 * The agent's WebRTC engines: werift (pure TypeScript, runs anywhere, TURN
 * over TCP) and node-datachannel (native, faster; no TURN over TCP).
 */
export const ENGINE_NAMES = ['werift', 'node-datachannel'] as const;
export const EngineNameSchema = z.enum(ENGINE_NAMES);
export type EngineName = z.infer<typeof EngineNameSchema>;

/** The node's answer, agent → server and on to the client alike. */
export const AnswerMessageSchema = z.object({
  type: z.literal('answer'),
  sessionId: id,
  sdp,
  /** The node's engine that answered, when it said (passed on to the client). */
  engine: EngineNameSchema.optional(),
});

/** A trickled candidate for a session, in every direction alike. */
export const CandidateMessageSchema = z.object({
  type: z.literal('candidate'),
  sessionId: id,
  candidate: IceCandidateSchema,
});

/** How a peer connection ended up connected, from `getStats()` on either end. */
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
  CandidateMessageSchema,
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
  AnswerMessageSchema,
  CandidateMessageSchema,
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
