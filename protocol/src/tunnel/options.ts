/**
 * A mux's settings: the options a caller may give, their defaults in one
 * place, and the checked values the mux runs with (bounded by the channel
 * and by what the peer's transport can take). Browser-safe.
 */
import type { FrameChannel } from './channel';
import { FRAME_HEADER_BYTES, INITIAL_WINDOW_BYTES } from './wire';

/**
 * Window a receiver grants each stream by default, in bytes: the initial
 * window plus one CREDIT sent when the stream starts. A window caps one
 * stream at window ÷ round-trip time; 256 KiB over a 50 ms path is 5 MB/s,
 * 2 MiB is 42 MB/s (bench/README.md, "a window for real round trips").
 */
export const DEFAULT_RECEIVE_WINDOW_BYTES = 2 * 1024 * 1024;
/**
 * Most window beyond the initial one that a receiver grants all its streams
 * together, in bytes (a connection window in effect, with no extra frame):
 * streams beyond it keep the initial window, so a receiver holds at most
 * this plus the initial window per stream.
 */
export const DEFAULT_RECEIVE_BUDGET_BYTES = 16 * 1024 * 1024;
/** Default largest DATA payload: 64 KiB (bounded by the channel's max-message-size); fewer, larger messages moved ~1.4x the bytes of 16 KiB ones into Chromium (bench/README.md). */
export const DEFAULT_MAX_FRAME_PAYLOAD_BYTES = 64 * 1024;
/** Default send high-water mark on the channel (keep ≤ 4 MiB for werift). */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/** Highest send high-water mark a caller may set: werift stalls for good around 8 MiB. */
const MAX_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Smallest DATA payload, whatever the channel says, in bytes. */
const MIN_FRAME_PAYLOAD_BYTES = 1024;
/** Default most streams open at once; more are refused (REFUSED). */
const DEFAULT_MAX_CONCURRENT_STREAMS = 512;
/** Largest WebSocket message after reassembly. */
export const DEFAULT_MAX_WS_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface MuxOptions {
  role: 'client' | 'server';
  maxFramePayloadBytes?: number;
  highWaterMarkBytes?: number;
  maxConcurrentStreams?: number;
  maxWsMessageBytes?: number;
  /** Window granted to each stream whose body this end receives (default DEFAULT_RECEIVE_WINDOW_BYTES; at least the initial window). */
  receiveWindowBytes?: number;
  /** Window beyond the initial one granted to all streams together (default DEFAULT_RECEIVE_BUDGET_BYTES). */
  receiveBudgetBytes?: number;
  /** Told about protocol violations (which never throw). */
  onProtocolError?: (streamId: number | null, reason: string) => void;
}

/** The settings a mux runs with, every one checked and filled in. */
export interface MuxSettings {
  role: 'client' | 'server';
  maxPayloadBytes: number;
  highWaterMarkBytes: number;
  maxStreams: number;
  maxWsMessageBytes: number;
  receiveWindowBytes: number;
  receiveBudgetBytes: number;
  /** The channel hands over each message as ours to keep (no copy of body bytes). */
  ownsMessages: boolean;
  onProtocolError: (streamId: number | null, reason: string) => void;
}

/** Fills in the defaults and bounds each option by the channel and the limits above. */
export function muxSettings(channel: FrameChannel, opts: MuxOptions): MuxSettings {
  const channelLimit =
    channel.maxMessageSize > 0 ? channel.maxMessageSize - FRAME_HEADER_BYTES : Infinity;
  return {
    role: opts.role,
    maxPayloadBytes: Math.max(
      MIN_FRAME_PAYLOAD_BYTES,
      Math.min(opts.maxFramePayloadBytes ?? DEFAULT_MAX_FRAME_PAYLOAD_BYTES, channelLimit),
    ),
    highWaterMarkBytes: Math.min(
      opts.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES,
      MAX_HIGH_WATER_MARK_BYTES,
    ),
    maxStreams: opts.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
    maxWsMessageBytes: opts.maxWsMessageBytes ?? DEFAULT_MAX_WS_MESSAGE_BYTES,
    receiveWindowBytes: Math.max(
      INITIAL_WINDOW_BYTES,
      opts.receiveWindowBytes ?? DEFAULT_RECEIVE_WINDOW_BYTES,
    ),
    receiveBudgetBytes: Math.max(0, opts.receiveBudgetBytes ?? DEFAULT_RECEIVE_BUDGET_BYTES),
    ownsMessages: channel.ownsMessages === true,
    onProtocolError: opts.onProtocolError ?? (() => {}),
  };
}
