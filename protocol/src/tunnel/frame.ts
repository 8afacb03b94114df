/**
 * Tunnel frames: the codec of the binary wire format of one data channel
 * (its constants in ./wire, the spec in protocol/README.md). Pure
 * functions; browser-safe (no Node APIs).
 *
 *   offset 0  u8   type
 *   offset 1  u8   flags
 *   offset 2  u32  stream id (big endian)
 *   offset 6  ...  payload (the rest of the message)
 */

import { FRAME_HEADER_BYTES, FrameType, type FrameTypeValue } from './wire';

// The frame table lives in ./wire; exported here too, where the codec's users look.
export {
  FRAME_HEADER_BYTES,
  FrameFlag,
  FrameType,
  ResetCode,
  type FrameTypeValue,
  type ResetCodeValue,
} from './wire';

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

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
