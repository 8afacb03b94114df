import { describe, expect, it } from 'vitest';
import { dispatchFrame, type FrameHandlers } from './dispatch';
import { FrameType, type FrameTypeValue } from './wire';
import type { Frame } from './frame';

const frame = (type: number): Frame => ({
  type: type as FrameTypeValue,
  flags: 0,
  streamId: 1,
  payload: new Uint8Array(),
});

describe('dispatchFrame', () => {
  it('hands each frame type to its handler', () => {
    const calls: string[] = [];
    const handlers = new Proxy({} as FrameHandlers, {
      get: (_t, name: string) => () => calls.push(name),
    });
    const expected: Record<keyof typeof FrameType, keyof FrameHandlers> = {
      REQ_HEAD: 'openingHead',
      RES_HEAD: 'replyHead',
      DATA: 'data',
      END: 'end',
      RESET: 'reset',
      CREDIT: 'credit',
      WS_OPEN: 'openingHead',
      WS_ACCEPT: 'replyHead',
      WS_MSG: 'socketFrame',
      WS_CLOSE: 'socketFrame',
      PING: 'ping',
      PONG: 'pong',
      GOAWAY: 'goAway',
    };
    for (const [name, handler] of Object.entries(expected)) {
      calls.length = 0;
      expect(dispatchFrame(frame(FrameType[name as keyof typeof FrameType]), handlers)).toBe(true);
      expect(calls, name).toEqual([handler]);
    }
  });

  it('says so for a type it has no handler for', () => {
    const handlers = new Proxy({} as FrameHandlers, {
      get: () => () => {
        throw new Error('no handler should run');
      },
    });
    expect(dispatchFrame(frame(0x7f), handlers)).toBe(false);
  });
});
