/**
 * werift's RTCDataChannel as the tunnel's FrameChannel. werift is the
 * agent's engine only (the browser has its own RTCDataChannel), so its
 * adapter lives here, not in the protocol.
 */
import type { FrameChannel } from '@peerway/protocol';

interface WeriftEvent<A extends unknown[]> {
  subscribe(cb: (...args: A) => void): unknown;
}
/** The part of werift's RTCDataChannel (0.24.x) the adapter uses. */
export interface WeriftDataChannelLike {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  readonly readyState: string;
  readonly onMessage: WeriftEvent<[string | Uint8Array]>;
  readonly bufferedAmountLow: WeriftEvent<unknown[]>;
  readonly stateChanged: WeriftEvent<[string]>;
  send(data: Uint8Array | string): void;
  close(): void;
}

/**
 * Wraps werift's RTCDataChannel. werift has no `onbufferedamountlow`
 * property; its events are `Event` objects with `subscribe`. It takes a
 * Buffer: a Uint8Array view is passed through `toBuffer`.
 */
export function fromWeriftDataChannel(
  dc: WeriftDataChannelLike,
  toBuffer: (u: Uint8Array) => Uint8Array,
  maxMessageSize = 65536,
): FrameChannel {
  return {
    send: (data) => dc.send(toBuffer(data)),
    get bufferedAmount() {
      return dc.bufferedAmount;
    },
    maxMessageSize,
    get isOpen() {
      return dc.readyState === 'open';
    },
    setBufferedAmountLowThreshold: (n) => {
      dc.bufferedAmountLowThreshold = n;
    },
    onMessage: (cb) =>
      dc.onMessage.subscribe((d) => {
        if (typeof d !== 'string') cb(d);
      }),
    onBufferedAmountLow: (cb) => dc.bufferedAmountLow.subscribe(() => cb()),
    onClose: (cb) =>
      dc.stateChanged.subscribe((s) => {
        if (s === 'closed') cb();
      }),
    close: () => dc.close(),
  };
}
