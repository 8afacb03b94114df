/**
 * FrameChannel: the one thing the tunnel needs from a transport — an ordered,
 * reliable message pipe with a send buffer it can watch. Adapters here wrap a
 * standard RTCDataChannel (browsers), werift's RTCDataChannel (structural
 * types; no werift import, so this file stays browser-safe) and an in-memory
 * pair for tests.
 */

export interface FrameChannel {
  send(data: Uint8Array): void;
  /** Bytes queued for sending and not yet handed to the transport. */
  readonly bufferedAmount: number;
  /** The largest message the peer accepts, in bytes. */
  readonly maxMessageSize: number;
  readonly isOpen: boolean;
  /**
   * Every message handed to `onMessage` is a buffer of its own that the
   * transport never touches again, so a receiver may keep it without a copy
   * (a browser's message event, libdatachannel's). Absent: the receiver copies.
   */
  readonly ownsMessages?: boolean;
  setBufferedAmountLowThreshold(bytes: number): void;
  onMessage(cb: (data: Uint8Array) => void): void;
  onBufferedAmountLow(cb: () => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

/** The standard RTCDataChannel surface the adapter uses. */
interface StandardDataChannel {
  binaryType: string;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  readonly readyState: string;
  send(data: ArrayBufferView | ArrayBuffer): void;
  close(): void;
  addEventListener(type: string, cb: (ev: { data?: unknown }) => void): void;
}

/** Wraps a browser RTCDataChannel (also any object with the standard surface). */
export function fromRTCDataChannel(dc: StandardDataChannel, maxMessageSize = 65536): FrameChannel {
  dc.binaryType = 'arraybuffer';
  return {
    send: (data) => dc.send(data),
    get bufferedAmount() {
      return dc.bufferedAmount;
    },
    maxMessageSize,
    get isOpen() {
      return dc.readyState === 'open';
    },
    // each message event carries a new ArrayBuffer
    ownsMessages: true,
    setBufferedAmountLowThreshold: (n) => {
      dc.bufferedAmountLowThreshold = n;
    },
    onMessage: (cb) =>
      dc.addEventListener('message', (ev) => {
        const d = ev.data;
        if (d instanceof ArrayBuffer) cb(new Uint8Array(d));
        else if (ArrayBuffer.isView(d)) cb(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        // Text messages are not part of the tunnel protocol: ignored.
      }),
    onBufferedAmountLow: (cb) => dc.addEventListener('bufferedamountlow', () => cb()),
    onClose: (cb) => dc.addEventListener('close', () => cb()),
    close: () => dc.close(),
  };
}

export interface MemoryChannelOptions {
  /** Largest message either end accepts (send throws above it). */
  maxMessageSize?: number;
  /** Bytes delivered per drain tick, to simulate a slow link. Default: all queued. */
  bytesPerTick?: number;
}

/**
 * Two connected in-memory FrameChannels for tests. Sends queue up and drain
 * asynchronously (a macrotask per tick), so `bufferedAmount` rises and falls
 * and `bufferedamountlow` fires the way it does on a real data channel.
 */
export function createMemoryChannelPair(
  opts: MemoryChannelOptions = {},
): [MemoryChannel, MemoryChannel] {
  const a = new MemoryChannel(opts);
  const b = new MemoryChannel(opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export class MemoryChannel implements FrameChannel {
  peer!: MemoryChannel;
  readonly maxMessageSize: number;
  /** `send` copies, so what the peer receives is its own. */
  readonly ownsMessages = true;
  bufferedAmount = 0;
  /** Largest `bufferedAmount` ever seen (for tests that check bounded buffering). */
  maxBufferedAmount = 0;
  private open = true;
  private queue: Uint8Array[] = [];
  private threshold = 0;
  private scheduled = false;
  private readonly msgCbs: ((d: Uint8Array) => void)[] = [];
  private readonly lowCbs: (() => void)[] = [];
  private readonly closeCbs: (() => void)[] = [];
  private readonly bytesPerTick: number;

  constructor(opts: MemoryChannelOptions) {
    this.maxMessageSize = opts.maxMessageSize ?? 65536;
    this.bytesPerTick = opts.bytesPerTick ?? Number.POSITIVE_INFINITY;
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(data: Uint8Array): void {
    if (!this.open) throw new Error('channel is closed');
    if (data.byteLength > this.maxMessageSize) {
      throw new Error(
        `message of ${data.byteLength} bytes exceeds max-message-size ${this.maxMessageSize}`,
      );
    }
    this.queue.push(data.slice());
    this.bufferedAmount += data.byteLength;
    this.maxBufferedAmount = Math.max(this.maxBufferedAmount, this.bufferedAmount);
    this.schedule();
  }

  /** Delivers raw bytes to the peer as if they came off the wire (for hostile-input tests). */
  injectToPeer(data: Uint8Array): void {
    this.send(data);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => this.drain(), 0);
  }

  private drain(): void {
    this.scheduled = false;
    let budget = this.bytesPerTick;
    while (this.queue.length > 0 && budget > 0 && this.open) {
      const m = this.queue.shift()!;
      budget -= m.byteLength;
      const before = this.bufferedAmount;
      this.bufferedAmount -= m.byteLength;
      if (this.peer.open) for (const cb of this.peer.msgCbs) cb(m);
      if (before > this.threshold && this.bufferedAmount <= this.threshold) {
        for (const cb of this.lowCbs) cb();
      }
    }
    if (this.queue.length > 0) this.schedule();
  }

  setBufferedAmountLowThreshold(n: number): void {
    this.threshold = n;
  }
  onMessage(cb: (d: Uint8Array) => void): void {
    this.msgCbs.push(cb);
  }
  onBufferedAmountLow(cb: () => void): void {
    this.lowCbs.push(cb);
  }
  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.queue = [];
    for (const cb of this.closeCbs) cb();
    this.peer.close();
  }
}
