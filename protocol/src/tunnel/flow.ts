/**
 * Session-level flow control, apart from any one stream: what a receiver
 * may grant all its streams together beyond the initial window (a
 * connection window in effect, with no extra frame), and the bound a sender
 * keeps on the channel's send buffer. Per-stream credit lives on the
 * stream (./stream). Browser-safe.
 */
import type { FrameChannel } from './channel';
import { TunnelError } from './errors';
import { INITIAL_WINDOW_BYTES, ResetCode } from './wire';

/**
 * The window beyond the initial one that a receiver still has to grant.
 * Each stream whose body this end receives takes its share when it starts
 * and gives it back when it ends; streams beyond the budget keep the
 * initial window, so a receiver holds at most the budget plus the initial
 * window per stream.
 */
export class ReceiveBudget {
  constructor(
    /** The window each stream is grown to, in bytes (at least the initial window). */
    private readonly windowBytes: number,
    /** Bytes still free to grant. */
    private freeBytes: number,
  ) {}

  /** Takes one stream's extra window: what it may be granted beyond the initial one (0: none left). */
  take(): number {
    const extra = Math.min(this.windowBytes - INITIAL_WINDOW_BYTES, this.freeBytes);
    if (extra <= 0) return 0;
    this.freeBytes -= extra;
    return extra;
  }

  /** Gives back what an ended stream had taken. */
  release(extra: number): void {
    this.freeBytes += extra;
  }
}

/**
 * Keeps the channel's `bufferedAmount` under the high-water mark: writers
 * wait for `bufferedamountlow` (fired at a quarter of the mark) while the
 * buffer is above it.
 */
export class SendGate {
  private waiters: (() => void)[] = [];
  private shut = false;

  constructor(
    private readonly channel: FrameChannel,
    /** The high-water mark, in bytes. */
    readonly highWaterMarkBytes: number,
  ) {
    channel.setBufferedAmountLowThreshold(Math.floor(highWaterMarkBytes / 4));
    channel.onBufferedAmountLow(() => this.wake());
  }

  /** The channel holds more than the mark. */
  get full(): boolean {
    return this.channel.bufferedAmount > this.highWaterMarkBytes;
  }

  /** Resolves when the buffer is at or below the mark; rejects once the tunnel is closed. */
  async writable(): Promise<void> {
    while (!this.shut && this.full) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.shut) throw new TunnelError(ResetCode.GOING_AWAY, 'the tunnel is closed');
  }

  /** The tunnel closed: every writer waiting here fails. */
  close(): void {
    this.shut = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }
}
