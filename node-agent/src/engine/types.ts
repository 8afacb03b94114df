/**
 * The agent's WebRTC side behind one small interface, so the engine can be
 * chosen, per session: werift (pure TypeScript, runs anywhere, TURN over
 * TCP) or node-datachannel (libdatachannel, a native addon: much faster). An engine
 * only answers: the browser (or Node client) always offers.
 */
import { ENGINE_NAMES, type AnswerPeer, type EngineName, type IceServer } from '@peerway/protocol';

export type { EngineName };
export const ENGINES: readonly EngineName[] = ENGINE_NAMES;

/**
 * One session's peer connection: the protocol's answering state machine
 * drives it (`AnswerPeer`, protocol/src/session/answerer.ts); the agent
 * also reads the peer's address and closes it.
 */
export interface AnswerSession extends AnswerPeer {
  /** The selected pair's remote address (the peer, or its relay), if known. */
  remoteAddress(): string | undefined;
  close(): void;
}

export interface RtcEngine {
  readonly name: EngineName;
  answerer(iceServers: IceServer[], label: string): AnswerSession;
}
