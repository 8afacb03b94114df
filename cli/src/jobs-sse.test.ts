import { describe, expect, it } from 'vitest';
import { jobEvent, parseSse, type SseEvent } from './jobs-sse';

/** The events of a stream cut into `chunks` exactly as given. */
async function events(...chunks: string[]): Promise<SseEvent[]> {
  const enc = new TextEncoder();
  async function* gen() {
    for (const c of chunks) yield enc.encode(c);
  }
  const out: SseEvent[] = [];
  for await (const e of parseSse(gen())) out.push(e);
  return out;
}

describe('parseSse', () => {
  it('reads named events, comments, multi-line data and ids', async () => {
    expect(
      await events(
        ': hello\n\n',
        'event: state\ndata: {"a":1}\nid: 7\n\n',
        'data:one\ndata: two\n\n',
        'retry: 1000\nevent: ping\n\n', // no data: not dispatched
      ),
    ).toEqual([
      { event: 'state', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'one\ntwo', id: '7' },
    ]);
  });

  it('takes CRLF, CR and LF, and lines and characters split across chunks', async () => {
    const euro = new TextEncoder().encode('data: €\n\n');
    const dec = new TextDecoder();
    // "€" is three bytes: cut it in the middle
    const first = dec.decode(euro.slice(0, 7), { stream: true });
    expect(first).not.toContain('€');
    async function* gen() {
      yield euro.slice(0, 7);
      yield euro.slice(7);
    }
    const split: SseEvent[] = [];
    for await (const e of parseSse(gen())) split.push(e);
    expect(split).toEqual([{ event: 'message', data: '€', id: undefined }]);

    expect(await events('event: a\r', '\ndata: 1\r', '\n\r', '\n', 'data: 2\r\r')).toEqual([
      { event: 'a', data: '1', id: undefined },
      { event: 'message', data: '2', id: undefined },
    ]);
    expect(await events('da', 'ta: x', '\n', '\n')).toEqual([
      { event: 'message', data: 'x', id: undefined },
    ]);
  });

  it('drops an event the stream cut off before its blank line', async () => {
    expect(await events('data: done\n\ndata: half')).toEqual([
      { event: 'message', data: 'done', id: undefined },
    ]);
  });
});

describe('jobEvent', () => {
  const ev = (event: string, data: unknown) => ({
    event,
    data: typeof data === 'string' ? data : JSON.stringify(data),
  });

  it('takes state and progress events with their fields', () => {
    expect(
      jobEvent(
        ev('state', { state: 'running', at: 5, attempt: 1, node: 'ab12cd', extra: 'dropped' }),
      ),
    ).toEqual({ type: 'state', state: 'running', at: 5, attempt: 1, node: 'ab12cd' });
    expect(
      jobEvent(ev('progress', { attempt: 2, at: 6, value: 3, max: 10, message: 'x' })),
    ).toEqual({ type: 'progress', attempt: 2, at: 6, value: 3, max: 10, message: 'x' });
  });

  it('ignores other events and data that is not a job event', () => {
    expect(jobEvent(ev('ping', { at: 1 }))).toBeNull();
    expect(jobEvent(ev('state', 'not json'))).toBeNull();
    expect(jobEvent(ev('state', { state: 'exploded', at: 1 }))).toBeNull();
    expect(jobEvent(ev('state', { state: 'queued' }))).toBeNull();
    expect(jobEvent(ev('progress', { at: 1 }))).toBeNull();
    // a field of the wrong type is left out, not passed on
    expect(jobEvent(ev('progress', { at: 1, attempt: 1, value: '3', message: 4 }))).toEqual({
      type: 'progress',
      at: 1,
      attempt: 1,
    });
  });
});
