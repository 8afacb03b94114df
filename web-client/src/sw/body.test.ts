import { describe, expect, it, vi } from 'vitest';
import { BodyReplay, ownChunk, readChunks, transfersOf, type ChunkedBody } from './body';
import { bodyOfRequest } from './requests';

const bytes = (...xs: number[]) => new Uint8Array(xs);
/** A stream of the given chunks, and how many it has given. */
function source(chunks: Uint8Array[]) {
  let given = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (given < chunks.length) c.enqueue(chunks[given++]!);
        else c.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, given: () => given };
}
async function all(s: ReadableStream<Uint8Array> | null): Promise<number[] | null> {
  if (!s) return null;
  const out: number[] = [];
  for (const r = s.getReader(); ;) {
    const { value, done } = await r.read();
    if (done) return out;
    out.push(...value);
  }
}

/** Posts `body` through a MessageChannel with its transfer list, as the worker does. */
async function post(body: ChunkedBody): Promise<ChunkedBody> {
  const { port1, port2 } = new MessageChannel();
  const got = new Promise<ChunkedBody>((r) => (port2.onmessage = (m) => r(m.data as ChunkedBody)));
  port1.postMessage(body, transfersOf(body));
  const out = await got;
  port1.close();
  port2.close();
  return out;
}

describe('an upload read into chunks', () => {
  it('reads a short body whole, and leaves a long one its rest as a stream', async () => {
    const short = await readChunks(source([bytes(1, 2), bytes(3)]).stream, 10);
    expect([short.chunks.map((c) => [...c]), short.rest]).toEqual([[[1, 2], [3]], null]);
    const src = source([bytes(1, 2), bytes(3, 4), bytes(5)]);
    const long = await readChunks(src.stream, 3);
    expect(long.chunks.map((c) => [...c])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(src.given()).toBe(2);
    expect(await all(long.rest)).toEqual([5]);
  });

  it('moves the buffers to the shell: at the sender they are empty, no Blob on the way', async () => {
    const r = new Request('http://a.localhost/x', {
      method: 'PUT',
      body: new Uint8Array(70_000).fill(7),
    });
    const blob = vi.spyOn(Request.prototype, 'blob');
    try {
      const body = await bodyOfRequest(r);
      const sent = body.chunks.map((c) => c.byteLength);
      expect(sent.reduce((a, b) => a + b, 0)).toBe(70_000);
      const got = await post(body);
      // transferred, not copied: the worker's views are detached
      expect(body.chunks.map((c) => c.byteLength)).toEqual(sent.map(() => 0));
      expect(got.chunks.map((c) => c.byteLength)).toEqual(sent);
      expect(got.chunks.every((c) => c.every((b) => b === 7))).toBe(true);
      expect(blob).not.toHaveBeenCalled();
    } finally {
      blob.mockRestore();
    }
  });

  it('moves a long body’s rest as a transferred stream', async () => {
    const body = await readChunks(source([bytes(1), bytes(2), bytes(3)]).stream, 1);
    const got = await post(body);
    expect(body.chunks[0]!.byteLength).toBe(0);
    expect([...got.chunks[0]!]).toEqual([1]);
    expect(await all(got.rest)).toEqual([2, 3]);
  });

  it('copies bytes the app owns into a buffer of its own', () => {
    const app = new Uint8Array([9, 8, 7, 6]);
    const c = ownChunk(app.subarray(1, 3));
    app.fill(0);
    expect(c.chunks.map((x) => [...x])).toEqual([[8, 7]]);
    expect(c.chunks[0]!.buffer.byteLength).toBe(2);
    expect(ownChunk(new ArrayBuffer(0)).chunks).toEqual([]);
  });
});

describe('a body the shell can send again', () => {
  it('sends chunks and the rest again on a retry when it keeps them', async () => {
    const src = source([bytes(3), bytes(4, 5)]);
    const replay = new BodyReplay({ chunks: [bytes(1), bytes(2)], rest: src.stream }, true);
    // the first attempt dies after two chunks: the retry still sends all
    const first = replay.stream()!.getReader();
    expect([...(await first.read()).value!]).toEqual([1]);
    expect([...(await first.read()).value!]).toEqual([2]);
    expect([...(await first.read()).value!]).toEqual([3]);
    expect(replay.replayable).toBe(true);
    expect(await all(replay.stream())).toEqual([1, 2, 3, 4, 5]);
    expect(await all(replay.stream())).toEqual([1, 2, 3, 4, 5]);
    expect(src.given()).toBe(2);
  });

  it('lets chunks go once sent when nothing sends them again', async () => {
    const held = [bytes(1), bytes(2)];
    const replay = new BodyReplay({ chunks: held, rest: source([bytes(3)]).stream }, false);
    expect(replay.replayable).toBe(true);
    expect(await all(replay.stream())).toEqual([1, 2, 3]);
    expect(replay.replayable).toBe(false);
    expect(await all(replay.stream())).toEqual([]);
    // the caller's list is untouched (the shim may send it again after a 307)
    expect(held.map((c) => [...c])).toEqual([[1], [2]]);
  });

  it('keeps the order when an old attempt and a retry pull the rest at once', async () => {
    const src = source([bytes(1), bytes(2), bytes(3)]);
    const replay = new BodyReplay({ chunks: [], rest: src.stream }, true);
    const old = replay.stream()!.getReader();
    const pending = old.read();
    const retry = all(replay.stream());
    expect([...(await pending).value!]).toEqual([1]);
    expect(await retry).toEqual([1, 2, 3]);
  });

  it('reads a Blob again for each attempt, and gives no stream for no body', async () => {
    const replay = new BodyReplay(new Blob([bytes(1, 2)]), false);
    expect(await all(replay.stream())).toEqual([1, 2]);
    expect(await all(replay.stream())).toEqual([1, 2]);
    expect(new BodyReplay(null, true).stream()).toBeNull();
  });
});
