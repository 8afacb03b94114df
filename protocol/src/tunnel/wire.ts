/**
 * The tunnel's wire constants, in one table: what the two ends of a data
 * channel must agree on (its label, the frame layout, frame types and flags,
 * reset and close codes, the window every stream starts with, the largest
 * head), the HTTP facts both browser ends apply to a tunnel answer, and when
 * each end reports how its connection was made. The codecs and state
 * machines (frame.ts, head.ts, mux.ts, socket.ts) import these; no other
 * file restates one. Browser-safe, no imports. The spec: protocol/README.md.
 */

/** The label of the one data channel that carries the tunnel (the offerer names it, the answerer checks it). */
export const TUNNEL_LABEL = 'peerway-tunnel';

/** Bytes before a frame's payload: u8 type, u8 flags, u32 stream id (big endian). */
export const FRAME_HEADER_BYTES = 6;

/** A frame's type, its first byte. */
export const FrameType = {
  REQ_HEAD: 0x01,
  RES_HEAD: 0x02,
  DATA: 0x03,
  END: 0x04,
  RESET: 0x05,
  CREDIT: 0x06,
  WS_OPEN: 0x07,
  WS_ACCEPT: 0x08,
  WS_MSG: 0x09,
  WS_CLOSE: 0x0a,
  PING: 0x0b,
  PONG: 0x0c,
  GOAWAY: 0x0d,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

/** Flags, a frame's second byte. MORE: a head or WebSocket message continues in the next frame. */
export const FrameFlag = { MORE: 0x01, BINARY: 0x02 } as const;

/** Codes carried by RESET and GOAWAY (and surfaced as `TunnelError.code` to the side that sees the reset). */
export const ResetCode = {
  PROTOCOL_ERROR: 1,
  CANCEL: 2,
  REFUSED: 3,
  FLOW_CONTROL: 4,
  INTERNAL: 5,
  FRAME_TOO_LARGE: 6,
  STREAM_CLOSED: 7,
  UPSTREAM_ERROR: 8,
  UNAUTHORIZED: 9,
  GOING_AWAY: 10,
} as const;
export type ResetCodeValue = (typeof ResetCode)[keyof typeof ResetCode];

/**
 * WebSocket close codes (RFC 6455 §7.4.1) that carry a meaning here.
 * NO_STATUS and ABNORMAL are never sent in a close frame: NO_STATUS stands
 * for a WS_CLOSE without a code, ABNORMAL for a stream that died without
 * any (a local reset, the tunnel gone), INTERNAL_ERROR for one the peer reset.
 */
export const WsCloseCode = {
  NORMAL: 1000,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INTERNAL_ERROR: 1011,
} as const;

/** Per-stream flow-control window every stream starts with, in bytes; the same on both ends. */
export const INITIAL_WINDOW_BYTES = 256 * 1024;

/** Most send credit one stream may hold; a CREDIT beyond it resets the stream (FLOW_CONTROL). In bytes. */
export const MAX_CREDIT_BYTES = 1024 * 1024 * 1024;

/** Largest head (after reassembly of MORE fragments), in bytes. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Header fields in order, as name/value pairs, so repeated fields (Set-Cookie) survive unchanged. */
export type HeaderPairs = [string, string][];

/**
 * Statuses whose response carries no body (the Fetch standard's "null body
 * status"): a `Response` with one of them must be built with a null body.
 */
export const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/**
 * Each end reports how its connection was made (`session-stats`) once when
 * the channel opens and again this many ms after that: ICE may still move
 * to a better pair in the first seconds.
 */
export const STATS_REPORT_DELAYS_MS: readonly number[] = [2000, 6000];
