/**
 * Frame dispatch: which of the mux's handlers takes each frame type that
 * arrives. One table over every frame type, checked exhaustive by the
 * compiler (a new frame type without a handler does not build).
 * Browser-safe.
 */
import type { Frame } from './frame';
import { FrameType, type FrameTypeValue } from './wire';

/** What the receiving end does with each kind of frame. */
export interface FrameHandlers {
  ping(f: Frame): void;
  pong(f: Frame): void;
  goAway(f: Frame): void;
  /** REQ_HEAD, WS_OPEN: the peer opens a stream (or continues its head). */
  openingHead(f: Frame): void;
  /** RES_HEAD, WS_ACCEPT: the peer answers a stream this end opened. */
  replyHead(f: Frame): void;
  data(f: Frame): void;
  end(f: Frame): void;
  reset(f: Frame): void;
  credit(f: Frame): void;
  /** WS_MSG, WS_CLOSE. */
  socketFrame(f: Frame): void;
}

const ROUTES: Record<FrameTypeValue, keyof FrameHandlers> = {
  [FrameType.PING]: 'ping',
  [FrameType.PONG]: 'pong',
  [FrameType.GOAWAY]: 'goAway',
  [FrameType.REQ_HEAD]: 'openingHead',
  [FrameType.WS_OPEN]: 'openingHead',
  [FrameType.RES_HEAD]: 'replyHead',
  [FrameType.WS_ACCEPT]: 'replyHead',
  [FrameType.DATA]: 'data',
  [FrameType.END]: 'end',
  [FrameType.RESET]: 'reset',
  [FrameType.CREDIT]: 'credit',
  [FrameType.WS_MSG]: 'socketFrame',
  [FrameType.WS_CLOSE]: 'socketFrame',
};

/**
 * Hands a decoded frame to its handler. False for a type with no handler
 * (decodeFrame lets only known types through, so only a bug gets there).
 */
export function dispatchFrame(f: Frame, handlers: FrameHandlers): boolean {
  const route = ROUTES[f.type] as keyof FrameHandlers | undefined;
  if (!route) return false;
  handlers[route](f);
  return true;
}
