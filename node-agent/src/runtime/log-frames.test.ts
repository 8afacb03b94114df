import { describe, expect, it } from 'vitest';
import { demuxLogs } from './log-frames';

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

describe('multiplexed logs', () => {
  it('joins stdout and stderr frames in order', () => {
    const body = Buffer.concat([frame(1, 'one\n'), frame(2, 'two\n'), frame(1, 'three\n')]);
    expect(demuxLogs(body)).toBe('one\ntwo\nthree\n');
  });

  it('keeps a truncated last frame and takes a TTY log as it is', () => {
    expect(demuxLogs(frame(1, 'complete\n').subarray(0, 12))).toBe('comp');
    expect(demuxLogs(Buffer.from('plain tty output\n'))).toBe('plain tty output\n');
    expect(demuxLogs(Buffer.alloc(0))).toBe('');
  });
});
