import { describe, expect, it } from 'vitest';
import { Stream } from './stream';
import { TunnelError } from './errors';
import { TunnelSocket } from './socket';
import { INITIAL_WINDOW_BYTES, MAX_HEAD_BYTES, ResetCode, WsCloseCode } from './wire';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('Stream', () => {
  it('reassembles a head from its fragments, copying each (the transport may reuse it)', () => {
    const s = new Stream(1, 'http');
    const first = bytes('{"a":');
    expect(s.addHeadFragment(first, true)).toBe('more');
    first.fill(0);
    const r = s.addHeadFragment(bytes('1}'), false);
    expect(r).not.toBe('more');
    expect(new TextDecoder().decode((r as { head: Uint8Array }).head)).toBe('{"a":1}');
    expect(s.headDone).toBe(true);
  });

  it('says a head is too large once its fragments pass the limit', () => {
    const s = new Stream(1, 'http');
    expect(s.addHeadFragment(new Uint8Array(MAX_HEAD_BYTES), true)).toBe('more');
    expect(s.addHeadFragment(new Uint8Array(1), false)).toBe('too-large');
    expect(s.headDone).toBe(false);
  });

  it('starts with the initial window and holds its sender until credit comes', async () => {
    const s = new Stream(1, 'http');
    expect(s.sendCredit).toBe(INITIAL_WINDOW_BYTES);
    s.sendCredit = 0;
    let woke = false;
    const waiting = s.waitCredit().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    s.addCredit(10);
    await waiting;
    expect(s.sendCredit).toBe(10);
  });

  it('settles: tells who waits for its end and wakes its sender', async () => {
    const s = new Stream(1, 'http');
    s.sendCredit = 0;
    const waiting = s.waitCredit();
    let done = 0;
    s.onDone.push(() => done++);
    s.settle();
    await waiting;
    s.settle();
    expect(done).toBe(1);
  });

  it('fails: its waiters, its abort signal and its WebSocket see the error', () => {
    const closes: number[] = [];
    const failed = (local: boolean) => {
      const s = new Stream(1, 'ws');
      s.socket = new TunnelSocket(
        { sendMessage: async () => {}, sendClose: () => {}, finished: () => {} },
        '',
        [],
      );
      s.socket.onClose((code) => closes.push(code));
      const seen: TunnelError[] = [];
      s.onResetCbs.push((e) => seen.push(e));
      const err = new TunnelError(ResetCode.CANCEL, 'gone');
      s.fail(err, local);
      expect(seen).toEqual([err]);
      expect(s.abort.signal.reason).toBe(err);
    };
    failed(true);
    failed(false);
    // reset here (or the tunnel gone): abnormal; reset by the peer: its internal error
    expect(closes).toEqual([WsCloseCode.ABNORMAL, WsCloseCode.INTERNAL_ERROR]);
  });
});
