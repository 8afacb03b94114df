/**
 * An upload on its way from the app to the tunnel, without the Blob store.
 *
 * Before, the worker turned every body into a Blob (`request.blob()`), the
 * shell read it back with `blob.stream()`: in Chromium both are a round
 * trip through the browser's blob store, and an upload through the worker
 * ran at ~3 MB/s against ~9.5 MB/s through the shim (issue 22). Now the
 * worker reads the request's own stream into chunks and posts them with
 * their ArrayBuffers in the transfer list (moved, not copied: at the worker
 * they are then empty); past HELD_BYTES the rest goes on as a transferred
 * ReadableStream, so a large file is never whole in a heap. The shim hands
 * bytes, strings and the like over as one chunk (a copy: the app may reuse
 * its buffer), and a Blob or File as itself (read as a stream, in chunks).
 *
 * Pure (no worker or DOM globals beyond streams), so it runs under Node.
 */

/** What the worker keeps in chunks before it hands the rest on as a stream. */
export const HELD_BYTES = 64 * 1024 * 1024;

/** An upload read (partly) into memory: its first chunks, then what is left of its stream (null: none). */
export interface ChunkedBody {
  chunks: Uint8Array[];
  rest: ReadableStream<Uint8Array> | null;
}

/** An upload as it crosses to the shell: a Blob (a File from the shim), or chunks and a rest. */
export type BridgeBody = Blob | ChunkedBody;

/** Reads `stream` into chunks until `limit` bytes are in; a longer body keeps the unread part as `rest`. */
export async function readChunks(
  stream: ReadableStream<Uint8Array>,
  limit = HELD_BYTES,
): Promise<ChunkedBody> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < limit) {
      const { value, done } = await reader.read();
      if (done) return { chunks, rest: null };
      if (value.byteLength === 0) continue;
      chunks.push(value);
      n += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  return { chunks, rest: stream };
}

/** One chunk holding `bytes` in a buffer of its own (a copy), for a body the app may change after fetch(). */
export function ownChunk(bytes: ArrayBuffer | ArrayBufferView): ChunkedBody {
  const copy =
    bytes instanceof ArrayBuffer
      ? new Uint8Array(bytes.slice(0))
      : new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { chunks: copy.byteLength ? [copy] : [], rest: null };
}

/** The transfer list that moves a body to another context: each chunk's buffer once, and the rest. */
export function transfersOf(body: BridgeBody | null): Transferable[] {
  if (!body || isBlob(body)) return [];
  const out = new Set<Transferable>();
  for (const c of body.chunks) out.add(c.buffer as ArrayBuffer);
  if (body.rest) out.add(body.rest as unknown as Transferable);
  return [...out];
}

const isBlob = (b: BridgeBody): b is Blob =>
  typeof (b as Blob).stream === 'function' && !('chunks' in b);

const EMPTY = new Uint8Array(0);

/**
 * A body the shell sends, as a fresh stream per attempt. A Blob is simply
 * read again. Chunks are kept as they came; what is read of the rest is
 * kept too when `keep` (an idempotent request the shell may retry on the
 * next tunnel: the retry sends the kept chunks, then reads on), and let go
 * once sent otherwise (nothing sends it again). One read of the rest at a
 * time, shared by every stream, so a stream still pulled by a dead tunnel
 * cannot reorder the bytes of the next attempt.
 */
export class BodyReplay {
  private readonly held: Uint8Array[];
  private rest: ReadableStreamDefaultReader<Uint8Array> | null;
  private filling: Promise<boolean> | null = null;
  /** Some of it has gone to a stream (that a tunnel may have sent). */
  private started = false;

  constructor(
    private readonly body: BridgeBody | null,
    private readonly keep: boolean,
  ) {
    if (!body || isBlob(body)) {
      this.held = [];
      this.rest = null;
    } else {
      // a copy of the list: the shim may hand the same body to a redirect
      this.held = [...body.chunks];
      this.rest = body.rest ? body.rest.getReader() : null;
    }
  }

  /** Whether another stream() would send the whole body again. */
  get replayable(): boolean {
    return this.keep || !this.started || (!!this.body && isBlob(this.body));
  }

  /** The body from its start (null when the request sends none). */
  stream(): ReadableStream<Uint8Array> | null {
    if (!this.body) return null;
    if (isBlob(this.body)) return this.body.stream() as ReadableStream<Uint8Array>;
    let i = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          while (i >= this.held.length) if (!(await this.fill())) return c.close();
          const chunk = this.held[i]!;
          if (!this.keep) this.held[i] = EMPTY;
          this.started = true;
          i++;
          c.enqueue(chunk);
        },
        // Not passed on to the rest: a retry may read on from it.
        cancel: () => {},
      },
      { highWaterMark: 0 },
    );
  }

  /** Reads one more chunk of the rest into `held`; false at its end. */
  private fill(): Promise<boolean> {
    const reader = this.rest;
    if (!reader) return Promise.resolve(false);
    return (this.filling ??= reader.read().then(
      ({ value, done }) => {
        this.filling = null;
        if (done) {
          this.rest = null;
          return false;
        }
        this.held.push(value);
        return true;
      },
      (err: unknown) => {
        this.filling = null;
        throw err;
      },
    ));
  }
}
