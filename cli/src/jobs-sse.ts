/**
 * Reading Server-Sent Events (`GET /api/jobs/:id/events`) in Node, where
 * there is no EventSource: the stream's bytes into events, as the HTML
 * standard's parsing rules say (lines end in CRLF, LF or CR; `:` starts a
 * comment; `data` lines join with "\n"; a blank line dispatches; an event
 * with no data is dropped).
 */
import { JOB_STATES, type JobEvent } from '@peerway/protocol';

export interface SseEvent {
  /** `message` when the server named none. */
  event: string;
  data: string;
  id?: string;
}

/** The events in a stream of bytes, as they complete (a last unfinished one is dropped). */
export async function* parseSse(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  // a CR at the end of a chunk may be the first half of a CRLF split across chunks
  let skipLf = false;
  const line = (l: string): SseEvent | null => {
    if (l === '') {
      const done = data.length ? { event: event || 'message', data: data.join('\n'), id } : null;
      event = '';
      data = [];
      return done;
    }
    if (l.startsWith(':')) return null;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    return null;
  };
  for await (const chunk of chunks) {
    buf += decoder.decode(chunk, { stream: true });
    if (skipLf && buf.startsWith('\n')) buf = buf.slice(1);
    skipLf = false;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buf);
      if (!m) break;
      if (m[0] === '\r' && m.index === buf.length - 1) skipLf = true;
      const l = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      const done = line(l);
      if (done) yield done;
    }
  }
}

/** Why an event stream could not be opened (the server's message when it sent one). */
export class SseOpenError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Opens `url` as an event stream with the bearer `token`: resolves once the
 * server answered with one (so a caller can read the state it may have
 * missed before), to its events until the server ends the stream or
 * `signal` aborts (which ends it quietly).
 */
export async function openSse(
  url: string,
  token: string,
  signal: AbortSignal,
): Promise<AsyncIterable<SseEvent>> {
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal,
  });
  if (!res.ok || !res.body) {
    const text = await res.text().catch(() => '');
    let message = `${url}: ${res.status}`;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: the status says it
    }
    throw new SseOpenError(res.status, message);
  }
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/event-stream')) {
    await res.body.cancel();
    throw new SseOpenError(
      res.status,
      `${url} answered ${type || 'no content type'}, not an event stream`,
    );
  }
  const body = res.body;
  return (async function* () {
    try {
      yield* parseSse(chunksOf(body));
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  })();
}

/** A stream's chunks; stopping early cancels the stream. */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
/** `o` without the fields that are undefined (the views' optional fields are absent, never undefined). */
const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * A job's event from its stream (`event: state`, `event: progress`, data
 * a JobEvent), or null for any other event or data that is not one: each
 * field is checked and copied, nothing is taken on trust.
 */
export function jobEvent(e: SseEvent): JobEvent | null {
  if (e.event !== 'state' && e.event !== 'progress') return null;
  let v: unknown;
  try {
    v = JSON.parse(e.data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const at = num(o.at);
  if (at === undefined) return null;
  if (e.event === 'state') {
    const state = JOB_STATES.find((s) => s === o.state);
    if (!state) return null;
    return defined({
      type: 'state' as const,
      state,
      at,
      attempt: num(o.attempt),
      node: str(o.node),
      reason: str(o.reason),
    });
  }
  const attempt = num(o.attempt);
  if (attempt === undefined) return null;
  return defined({
    type: 'progress' as const,
    attempt,
    at,
    value: num(o.value),
    max: num(o.max),
    message: str(o.message),
  });
}
