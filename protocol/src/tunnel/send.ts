/**
 * The sending half of a tunnel: control frames go out at once, heads in
 * fragments of the frame size, body and WebSocket bytes within the send
 * gate's high-water mark (and bodies within their stream's credit).
 * Browser-safe.
 */
import type { FrameChannel } from './channel';
import { TunnelError } from './errors';
import { encodeFrame } from './frame';
import type { SendGate } from './flow';
import type { Stream } from './stream';
import { FrameFlag, FrameType, MAX_HEAD_BYTES, ResetCode, type FrameTypeValue } from './wire';

export class FrameSender {
  /** Bytes of DATA and WebSocket messages sent, for load reports. */
  bytesSent = 0;

  constructor(
    private readonly channel: FrameChannel,
    private readonly gate: SendGate,
    /** Largest payload of one frame, in bytes. */
    private readonly maxPayloadBytes: number,
    /** The tunnel is closed: control frames are dropped. */
    private readonly isClosed: () => boolean,
    /** A control frame could not be sent (the channel refused it). */
    private readonly onSendFailed: (streamId: number, message: string) => void,
  ) {}

  /** Sends a small frame at once, whatever the buffer holds. */
  control(type: FrameTypeValue, id: number, payload?: Uint8Array, flags = 0): void {
    if (this.isClosed() || !this.channel.isOpen) return;
    try {
      this.channel.send(encodeFrame(type, id, payload, flags));
    } catch (err) {
      this.onSendFailed(id, err instanceof Error ? err.message : String(err));
    }
  }

  /** Sends a head as JSON, in MORE-flagged fragments when it is larger than one frame. */
  head(type: FrameTypeValue, id: number, head: unknown): void {
    const bytes = new TextEncoder().encode(JSON.stringify(head));
    if (bytes.byteLength > MAX_HEAD_BYTES)
      throw new TunnelError(ResetCode.FRAME_TOO_LARGE, 'head too large');
    const max = this.maxPayloadBytes;
    for (let off = 0; off < bytes.byteLength || off === 0; off += max) {
      const end = Math.min(off + max, bytes.byteLength);
      this.control(type, id, bytes.subarray(off, end), end < bytes.byteLength ? FrameFlag.MORE : 0);
      if (end >= bytes.byteLength) break;
    }
  }

  /**
   * Sends one chunk of a stream's body as DATA frames, each within the
   * stream's credit and the high-water mark. False when the stream closed
   * before all of it went out.
   */
  async data(s: Stream, chunk: Uint8Array): Promise<boolean> {
    let off = 0;
    while (off < chunk.byteLength) {
      // The mark and the credit are checked with no await between the
      // check and the send, so streams woken together by
      // bufferedamountlow cannot all overshoot the mark.
      await s.waitCredit();
      if (s.closed) return false;
      if (this.gate.full) {
        await this.gate.writable();
        continue;
      }
      if (s.sendCredit <= 0) continue;
      const n = Math.min(chunk.byteLength - off, this.maxPayloadBytes, s.sendCredit);
      this.channel.send(encodeFrame(FrameType.DATA, s.id, chunk.subarray(off, off + n)));
      this.bytesSent += n;
      s.sendCredit -= n;
      off += n;
    }
    return true;
  }

  /** Sends one WebSocket message as WS_MSG frames (MORE between fragments) within the high-water mark. */
  async socketMessage(s: Stream, data: Uint8Array, binary: boolean): Promise<void> {
    let off = 0;
    do {
      while (this.gate.full) await this.gate.writable();
      if (s.closed) throw new TunnelError(ResetCode.STREAM_CLOSED, 'the WebSocket is closed');
      const end = Math.min(off + this.maxPayloadBytes, data.byteLength);
      const flags = (binary ? FrameFlag.BINARY : 0) | (end < data.byteLength ? FrameFlag.MORE : 0);
      this.channel.send(encodeFrame(FrameType.WS_MSG, s.id, data.subarray(off, end), flags));
      this.bytesSent += end - off;
      off = end;
    } while (off < data.byteLength);
  }
}
