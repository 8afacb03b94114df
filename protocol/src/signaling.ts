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
 * The modules, none of which imports another's channel:
 *  - ./signaling-shared.ts: what both channels use (ICE, engines, answer,
 *    candidate, connection stats);
 *  - ./signaling-client.ts: the client's channel;
 *  - ./signaling-agent.ts: the agent's channel, a module of its own so that
 *    the browser's bundle (which never speaks it) leaves its schemas out and
 *    does not spend the page's main thread building them; this module does
 *    not re-export it (the package's index does);
 *  - ./signaling-encode.ts: the one serialiser, for both;
 *  - ./signaling-fields.ts and ./signaling-parse.ts: field rules and the parser.
 */
export * from './signaling-shared';
export * from './signaling-client';
export { encodeMessage } from './signaling-encode';
export { MAX_SIGNALING_MESSAGE_BYTES } from './signaling-fields';
export type { ParseResult } from './signaling-parse';
