/**
 * Tunnel frames: the binary wire format of one data channel (spec in
 * protocol/README.md). Pure functions; browser-safe (no Node APIs).
 *
 *   offset 0  u8   type
 *   offset 1  u8   flags
 *   offset 2  u32  stream id (big endian)
 *   offset 6  ...  payload (the rest of the message)
 */

export const FRAME_HEADER_BYTES = 6;

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
const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** Flags. MORE: a head or WebSocket message continues in the next frame. */
export const FrameFlag = { MORE: 0x01, BINARY: 0x02 } as const;

/** Codes carried by RESET (and surfaced to the side that sees the reset). */
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

export interface Frame {
  type: FrameTypeValue;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

export type DecodeResult =
  { ok: true; frame: Frame } | { ok: false; streamId: number | null; reason: string };

/** Encodes one frame into a fresh message. */
export function encodeFrame(
  type: FrameTypeValue,
  streamId: number,
  payload?: Uint8Array,
  flags = 0,
): Uint8Array {
  const len = payload ? payload.byteLength : 0;
  const out = new Uint8Array(FRAME_HEADER_BYTES + len);
  out[0] = type;
  out[1] = flags;
  new DataView(out.buffer).setUint32(2, streamId >>> 0);
  if (payload) out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Decodes one message into a frame, or says why it cannot (and which stream, if known). */
export function decodeFrame(msg: Uint8Array): DecodeResult {
  if (msg.byteLength < FRAME_HEADER_BYTES) {
    return {
      ok: false,
      streamId: null,
      reason: `frame of ${msg.byteLength} bytes is shorter than its header`,
    };
  }
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const type = msg[0]!;
  const streamId = view.getUint32(2);
  if (!KNOWN_TYPES.has(type)) {
    return { ok: false, streamId, reason: `unknown frame type 0x${type.toString(16)}` };
  }
  return {
    ok: true,
    frame: {
      type: type as FrameTypeValue,
      flags: msg[1]!,
      streamId,
      payload: msg.subarray(FRAME_HEADER_BYTES),
    },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** u16 code + UTF-8 reason (RESET, WS_CLOSE). */
export function encodeCodeReason(code: number, reason: string): Uint8Array {
  const r = enc.encode(reason.slice(0, 200));
  const out = new Uint8Array(2 + r.byteLength);
  new DataView(out.buffer).setUint16(0, code);
  out.set(r, 2);
  return out;
}

export function decodeCodeReason(p: Uint8Array): { code: number; reason: string } | null {
  if (p.byteLength < 2) return null;
  const code = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint16(0);
  let reason = '';
  try {
    reason = new TextDecoder('utf-8', { fatal: true }).decode(p.subarray(2));
  } catch {
    return null;
  }
  return { code, reason };
}

/** u32 (CREDIT, PING, PONG). */
export function encodeU32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0);
  return out;
}

export function decodeU32(p: Uint8Array): number | null {
  if (p.byteLength !== 4) return null;
  return new DataView(p.buffer, p.byteOffset, 4).getUint32(0);
}

export function encodeText(s: string): Uint8Array {
  return enc.encode(s);
}
export function decodeText(p: Uint8Array): string {
  return dec.decode(p);
}
