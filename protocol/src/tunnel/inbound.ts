/**
 * The receiving half of a stream's body: a ReadableStream fed by DATA frames
 * whose consumption returns flow-control credit to the sender. With a high
 * water mark of 0 nothing is pulled ahead of the reader, so a slow reader
 * stops the sender once the window is spent: memory stays bounded by the
 * window.
 */
import { TunnelError } from './errors';

export class InboundBody {
  readonly readable: ReadableStream<Uint8Array>;
  private queue: Uint8Array[] = [];
  private ended = false;
  private failure: TunnelError | null = null;
  private wake: (() => void) | null = null;
  private unacked = 0;
  /** Bytes the sender may still send before we return credit. */
  private window: number;
  /** The stream's whole window: credit goes back once a quarter of it has been read. */
  private size: number;

  constructor(
    initialWindow: number,
    private readonly sendCredit: (bytes: number) => void,
    onCancel: (reason: unknown) => void,
  ) {
    this.window = initialWindow;
    this.size = initialWindow;
    this.readable = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          while (this.queue.length === 0 && !this.ended && !this.failure) {
            await new Promise<void>((r) => (this.wake = r));
          }
          const chunk = this.queue.shift();
          if (chunk) {
            controller.enqueue(chunk);
            this.unacked += chunk.byteLength;
            if (this.unacked >= this.size / 4 && !this.ended) {
              this.window += this.unacked;
              this.sendCredit(this.unacked);
              this.unacked = 0;
            }
          } else if (this.failure) {
            controller.error(this.failure);
          } else {
            controller.close();
          }
        },
        cancel: (reason) => {
          this.ended = true;
          this.queue = [];
          onCancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * Adds received bytes; false when the sender overran its window. `owned`:
   * the bytes are the receiver's to keep (else copied, since the transport
   * may reuse the buffer).
   */
  push(data: Uint8Array, owned = false): boolean {
    if (this.ended || this.failure) return true;
    this.window -= data.byteLength;
    if (this.window < 0) return false;
    this.queue.push(owned ? data : data.slice());
    this.poke();
    return true;
  }

  /** The receiver granted `extra` more window (it sends the CREDIT). */
  grow(extra: number): void {
    this.window += extra;
    this.size += extra;
  }

  end(): void {
    this.ended = true;
    this.poke();
  }

  fail(err: TunnelError): void {
    if (this.ended && this.queue.length === 0) return;
    this.failure = err;
    this.queue = [];
    this.poke();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
