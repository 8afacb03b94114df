/**
 * The agent's WebRTC side behind one small interface, so the engine can be
 * chosen, per session: werift (pure TypeScript, runs anywhere, TURN over
 * TCP) or node-datachannel (libdatachannel, a native addon: much faster). An engine
 * only answers: the browser (or Node client) always offers.
 */
import {
  ENGINE_NAMES,
  type ConnectionStats,
  type EngineName,
  type FrameChannel,
  type IceCandidate,
  type IceServer,
} from '@peerway/protocol';

export type { EngineName };
export const ENGINES: readonly EngineName[] = ENGINE_NAMES;

export interface AnswerSession {
  /** Applies the offer and resolves with the answer SDP (candidates trickle through onCandidate). */
  answer(offerSdp: string): Promise<string>;
  addRemoteCandidate(c: IceCandidate): Promise<void>;
  /** A local candidate to send to the peer (a=candidate line and its mid). */
  onCandidate(cb: (c: { candidate: string; sdpMid: string | null }) => void): void;
  /** The tunnel data channel, open, as the tunnel's FrameChannel. */
  onChannel(cb: (ch: FrameChannel) => void): void;
  /** The connection failed or closed for good. */
  onEnd(cb: (state: 'failed' | 'closed') => void): void;
  stats(): Promise<ConnectionStats | null>;
  /** The selected pair's remote address (the peer, or its relay), if known. */
  remoteAddress(): string | undefined;
  close(): void;
}

export interface RtcEngine {
  readonly name: EngineName;
  answerer(iceServers: IceServer[], label: string): AnswerSession;
}
