import { describe, expect, it } from 'vitest';
import { createMemoryChannelPair, type MemoryChannel } from './channel';
import {
  TunnelMux,
  INITIAL_WINDOW_BYTES,
  DEFAULT_MAX_FRAME_PAYLOAD_BYTES,
  DEFAULT_RECEIVE_WINDOW_BYTES,
  type MuxOptions,
} from './mux';
import { FrameType, encodeFrame, ResetCode, decodeFrame } from './frame';
import { TunnelError } from './errors';

function pair(opts: Omit<MuxOptions, 'role'> = {}) {
  const [a, b] = createMemoryChannelPair();
  const client = new TunnelMux(a, { role: 'client', ...opts });
  const server = new TunnelMux(b, { role: 'server', ...opts });
  return { a, b, client, server };
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.byteLength));
  return out;
}
const text = (u: Uint8Array) => new TextDecoder().decode(u);

function echoServer(server: TunnelMux) {
  server.onRequest(async (req) => {
    const body = await readAll(req.body).catch(() => null);
    if (!body) return; // the stream was reset
    await req.respond(
      {
        status: 200,
        statusText: 'OK',
        headers: [
          ['x-path', req.head.path],
          ['set-cookie', 'a=1'],
          ['set-cookie', 'b=2'],
        ],
      },
      new TextEncoder().encode(`${req.head.method} ${text(body)}`),
    );
  });
}

describe('TunnelMux', () => {
  it('carries a request and its response, keeping repeated headers', async () => {
    const { client, server } = pair();
    echoServer(server);
    const res = await client.request(
      { method: 'POST', path: '/x?y=1', headers: [] },
      new TextEncoder().encode('hi'),
    );
    expect(res.status).toBe(200);
    expect(res.headers.filter(([k]) => k === 'set-cookie').map(([, v]) => v)).toEqual([
      'a=1',
      'b=2',
    ]);
    expect(text(await readAll(res.body))).toBe('POST hi');
    expect(client.activeStreams).toBe(0);
  });

  it('runs 100 concurrent requests', async () => {
    const { client, server } = pair();
    echoServer(server);
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const r = await client.request(
          { method: 'PUT', path: `/${i}`, headers: [] },
          new TextEncoder().encode(String(i)),
        );
        return text(await readAll(r.body));
      }),
    );
    expect(results).toEqual(Array.from({ length: 100 }, (_, i) => `PUT ${i}`));
  });

  it('streams a large body in bounded memory', async () => {
    const { a, b, client, server } = pair();
    const total = 32 * 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(7);
    server.onRequest((req) => {
      let sent = 0;
      void req.respond(
        { status: 200, headers: [] },
        new ReadableStream({
          pull(c) {
            if (sent >= total) return c.close();
            c.enqueue(chunk);
            sent += chunk.byteLength;
          },
        }),
      );
    });
    const res = await client.request({ method: 'GET', path: '/big', headers: [] });
    let got = 0;
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) got += c.byteLength;
    expect(got).toBe(total);
    // sender never buffered much more than the high-water mark (+ one frame)
    expect((b as MemoryChannel).maxBufferedAmount).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
    expect((a as MemoryChannel).maxBufferedAmount).toBeLessThan(64 * 1024);
  });

  it('many streams together stay within the high-water mark', async () => {
    const { b, client, server } = pair();
    const chunk = new Uint8Array(64 * 1024).fill(1);
    server.onRequest((req) => {
      let sent = 0;
      void req.respond(
        { status: 200, headers: [] },
        new ReadableStream({
          pull(c) {
            if (sent >= 2 * 1024 * 1024) return c.close();
            c.enqueue(chunk);
            sent += chunk.byteLength;
          },
        }),
      );
    });
    const sizes = await Promise.all(
      Array.from(
        { length: 50 },
        async () =>
          (await readAll((await client.request({ method: 'GET', path: '/', headers: [] })).body))
            .byteLength,
      ),
    );
    expect(sizes.every((n) => n === 2 * 1024 * 1024)).toBe(true);
    // one frame of slack at most, not one per stream
    expect((b as MemoryChannel).maxBufferedAmount).toBeLessThanOrEqual(
      1024 * 1024 + DEFAULT_MAX_FRAME_PAYLOAD_BYTES + 64,
    );
  });

  /** A server whose responses never end, and how many bytes each one produced. */
  function endlessServer(server: TunnelMux) {
    const produced: number[] = [];
    server.onRequest((req) => {
      const i = produced.push(0) - 1;
      void req.respond(
        { status: 200, headers: [] },
        new ReadableStream(
          {
            pull(c) {
              produced[i]! += 16384;
              c.enqueue(new Uint8Array(16384));
            },
          },
          { highWaterMark: 0 },
        ),
      );
    });
    return produced;
  }

  it('a slow reader stops the sender at the window', async () => {
    const { client, server } = pair();
    const produced = endlessServer(server);
    const res = await client.request({ method: 'GET', path: '/', headers: [] });
    await new Promise((r) => setTimeout(r, 100));
    // nothing read yet: the sender produced the receive window (initial
    // window + the client's CREDIT), and no more than a chunk beyond it
    expect(produced[0]).toBeGreaterThanOrEqual(DEFAULT_RECEIVE_WINDOW_BYTES);
    expect(produced[0]).toBeLessThanOrEqual(DEFAULT_RECEIVE_WINDOW_BYTES + 2 * 16384);
    await res.body.cancel();
  });

  it('a receiver that keeps the initial window grants no more', async () => {
    const { client, server } = pair({ receiveWindowBytes: INITIAL_WINDOW_BYTES });
    const produced = endlessServer(server);
    const res = await client.request({ method: 'GET', path: '/', headers: [] });
    await new Promise((r) => setTimeout(r, 100));
    expect(produced[0]).toBeLessThanOrEqual(INITIAL_WINDOW_BYTES + 2 * 16384);
    await res.body.cancel();
  });

  it('the receive budget bounds the window of all streams together, and comes back when they end', async () => {
    const MiB = 1024 * 1024;
    const { client, server } = pair({ receiveWindowBytes: MiB, receiveBudgetBytes: MiB });
    const produced = endlessServer(server);
    const heads = { method: 'GET', path: '/', headers: [] };
    const res = [
      await client.request(heads),
      await client.request(heads),
      await client.request(heads),
    ];
    await new Promise((r) => setTimeout(r, 100));
    const slack = 2 * 16384;
    // the first stream gets its whole window, the second what is left of the budget, the third the initial window
    expect(produced[0]).toBeGreaterThanOrEqual(MiB);
    expect(produced[0]).toBeLessThanOrEqual(MiB + slack);
    expect(produced[1]).toBeLessThanOrEqual(INITIAL_WINDOW_BYTES + MiB / 4 + slack);
    expect(produced[2]).toBeLessThanOrEqual(INITIAL_WINDOW_BYTES + slack);
    expect(produced.reduce((a, b) => a + b)).toBeLessThanOrEqual(
      3 * INITIAL_WINDOW_BYTES + MiB + 3 * slack,
    );
    // cancelling ends a stream here at once: its window is back in the budget
    for (const r of res) await r.body.cancel();
    // the ended streams gave their window back: a new one gets the whole window again
    const again = await client.request(heads);
    await new Promise((r) => setTimeout(r, 100));
    expect(produced[3]).toBeGreaterThanOrEqual(MiB);
    await again.body.cancel();
  });

  it('abort mid-download aborts the server side', async () => {
    const { client, server } = pair();
    const aborted = new Promise<unknown>((resolve) => {
      server.onRequest((req) => {
        req.signal.addEventListener('abort', () => resolve(req.signal.reason));
        void req.respond(
          { status: 200, headers: [] },
          new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1000)) }),
        );
      });
    });
    const ac = new AbortController();
    const res = await client.request({ method: 'GET', path: '/', headers: [] }, null, {
      signal: ac.signal,
    });
    const reader = res.body.getReader();
    await reader.read();
    await reader.cancel();
    const reason = await aborted;
    expect(reason).toBeInstanceOf(TunnelError);
    expect((reason as TunnelError).code).toBe(ResetCode.CANCEL);
  });

  it('hostile frames reset only their stream; others keep working', async () => {
    const { a, client, server } = pair();
    const errors: string[] = [];
    echoServer(server);
    const resets: number[] = [];
    // watch frames coming back to the client channel
    a.onMessage((m) => {
      const r = decodeFrame(m);
      if (r.ok && r.frame.type === FrameType.RESET) resets.push(r.frame.streamId);
    });
    const slow = client.request(
      { method: 'POST', path: '/slow', headers: [] },
      new ReadableStream({ start() {} }),
    );
    a.injectToPeer(new Uint8Array([1, 2, 3])); // shorter than a header
    a.injectToPeer(encodeFrame(0x7f as never, 1001)); // unknown type
    a.injectToPeer(encodeFrame(FrameType.DATA, 2001, new Uint8Array(5))); // never opened
    a.injectToPeer(encodeFrame(FrameType.REQ_HEAD, 3001, new TextEncoder().encode('{not json'))); // bad head
    a.injectToPeer(encodeFrame(FrameType.REQ_HEAD, 1, new TextEncoder().encode('{}'))); // reuse of open id 1
    a.injectToPeer(encodeFrame(FrameType.CREDIT, 0, new Uint8Array(2)));
    for (let i = 0; i < 200; i++) {
      const junk = new Uint8Array(6 + (i % 40));
      for (let j = 0; j < junk.length; j++) junk[j] = (i * 31 + j * 17) & 0xff;
      // GOAWAY is a legitimate way to end the tunnel; opening heads with random
      // ids would move the client's own id space (tested explicitly above).
      if (
        junk[0] === FrameType.GOAWAY ||
        junk[0] === FrameType.REQ_HEAD ||
        junk[0] === FrameType.WS_OPEN
      )
        continue;
      a.injectToPeer(junk);
    }
    await expect(slow).rejects.toBeInstanceOf(TunnelError);
    const res = await client.request({ method: 'GET', path: '/after', headers: [] });
    expect(text(await readAll(res.body))).toBe('GET ');
    expect(resets).toContain(1001);
    expect(resets).toContain(3001);
    expect(resets).toContain(1);
    expect(server.isClosed).toBe(false);
    expect(errors).toEqual([]);
  });

  it('refuses DATA beyond the flow-control window', async () => {
    const { a, server } = pair();
    let failure: unknown;
    server.onRequest(async (req) => {
      await new Promise((r) => setTimeout(r, 50));
      try {
        await readAll(req.body);
      } catch (e) {
        failure = e;
      }
    });
    a.injectToPeer(
      encodeFrame(
        FrameType.REQ_HEAD,
        1,
        new TextEncoder().encode(JSON.stringify({ method: 'POST', path: '/', headers: [] })),
      ),
    );
    const chunk = new Uint8Array(16 * 1024);
    // the server granted the receive window (the initial one and a CREDIT)
    for (let i = 0; i < DEFAULT_RECEIVE_WINDOW_BYTES / chunk.length + 2; i++)
      a.injectToPeer(encodeFrame(FrameType.DATA, 1, chunk));
    await new Promise((r) => setTimeout(r, 100));
    expect(failure).toBeInstanceOf(TunnelError);
    expect((failure as TunnelError).code).toBe(ResetCode.FLOW_CONTROL);
  });

  it('carries WebSocket text, binary, large messages and close codes', async () => {
    const { client, server } = pair();
    server.onWebSocket((inc) => {
      expect(inc.head.path).toBe('/chat');
      const ws = inc.accept({ protocol: 'chat.v1' });
      ws.onMessage((m) => void ws.send(typeof m === 'string' ? `echo:${m}` : m));
      ws.onClose((code) => expect(code).toBe(4000));
    });
    const ws = await client.openWebSocket({ path: '/chat', protocols: ['chat.v1'], headers: [] });
    expect(ws.protocol).toBe('chat.v1');
    const got: (string | Uint8Array)[] = [];
    ws.onMessage((m) => got.push(m));
    await ws.send('hello');
    await ws.send(new Uint8Array([1, 2, 3]));
    const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
    await ws.send(big);
    await new Promise((r) => setTimeout(r, 50));
    expect(got[0]).toBe('echo:hello');
    expect(Array.from(got[1] as Uint8Array)).toEqual([1, 2, 3]);
    expect((got[2] as Uint8Array).byteLength).toBe(100_000);
    expect((got[2] as Uint8Array)[99_999]).toBe(99_999 & 0xff);
    const closed = new Promise<number>((r) => ws.onClose((c) => r(c)));
    ws.close(4000, 'bye');
    expect(await closed).toBe(4000);
  });

  it('refused WebSocket rejects with the status', async () => {
    const { client, server } = pair();
    server.onWebSocket((inc) => inc.reject(403, 'Forbidden'));
    await expect(client.openWebSocket({ path: '/', protocols: [], headers: [] })).rejects.toThrow(
      /403/,
    );
  });

  it('counts every message from the peer (liveness: a late pong behind data is not a dead peer)', async () => {
    const { client, server } = pair();
    echoServer(server);
    expect(client.messagesReceived).toBe(0);
    await client.ping();
    expect(client.messagesReceived).toBe(1); // the pong
    const res = await client.request({ method: 'POST', path: '/', headers: [] }, new Uint8Array(8));
    await readAll(res.body);
    // response head, DATA, END (and maybe CREDIT): all count
    expect(client.messagesReceived).toBeGreaterThanOrEqual(4);
    expect(server.messagesReceived).toBeGreaterThanOrEqual(3);
  });

  it('answers pings and fails all streams when the channel closes', async () => {
    const { a, client, server } = pair();
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    server.onRequest(() => {});
    const pending = client.request({ method: 'GET', path: '/', headers: [] });
    await new Promise((r) => setTimeout(r, 10));
    a.close();
    await expect(pending).rejects.toBeInstanceOf(TunnelError);
    expect(client.isClosed).toBe(true);
  });
});
