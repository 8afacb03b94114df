/**
 * The client's signaling channel (`/ws/client`): client (browser shell or
 * Node tunnel client) → server and server → client, defined and parsed as
 * ./signaling.ts describes.
 */
import { z } from 'zod';
import { errorCode, id, sdp, serviceName, shortText, token } from './signaling-fields';
import { makeParser, typesOf } from './signaling-parse';
import {
  CandidateMessageSchema,
  AnswerMessageSchema,
  ConnectionStatsSchema,
  EngineNameSchema,
  IceServerSchema,
} from './signaling-shared';

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
