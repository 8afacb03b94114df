/**
 * Schemas both signaling channels use (./signaling-client.ts and
 * ./signaling-agent.ts): ICE servers and candidates, the engines, the
 * answer and candidate messages (the same in every direction) and the
 * connection stats either end reports.
 */
import { z } from 'zod';
import { MAX_CANDIDATE_CHARS, id, sdp } from './signaling-fields';

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
