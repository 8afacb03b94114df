/**
 * Tunnel heads and the Fetch API (Headers, Response), as the browser ends
 * turn one into the other: the service worker for the app's requests, the
 * in-page shim for its direct fetch() calls. Browser-safe; Node has the
 * same classes.
 */
import { NULL_BODY_STATUSES, type HeaderPairs } from './wire';

/** A tunnel answer's status line and fields. */
export interface AnswerHead {
  status: number;
  statusText: string;
  headers: HeaderPairs;
}

/** A Headers' fields as pairs, in its order (the form a tunnel head carries). */
export function headerPairsOf(headers: Headers): HeaderPairs {
  const pairs: HeaderPairs = [];
  headers.forEach((v, k) => pairs.push([k, v]));
  return pairs;
}

/** The answer has no body: a null body status, or any answer to a HEAD request (`method`, when given). */
export function hasNullBody(status: number, method?: string): boolean {
  return NULL_BODY_STATUSES.has(status) || method === 'HEAD';
}

/** A head's fields as Headers; a field Headers refuses (an invalid name or value) is dropped. */
export function headersFromPairs(pairs: HeaderPairs): Headers {
  const h = new Headers();
  for (const [k, v] of pairs) {
    try {
      h.append(k, v);
    } catch {
      // a field a Response may not carry is dropped, the rest pass
    }
  }
  return h;
}

/**
 * The Response for a tunnel answer: its status, status text and fields,
 * and `body` unless the answer has none (see hasNullBody). Throws a
 * RangeError for a status a Response cannot have (below 200), as
 * `new Response` does.
 */
export function responseFromHead(
  head: AnswerHead,
  body: ReadableStream<Uint8Array> | null,
  method?: string,
): Response {
  return new Response(hasNullBody(head.status, method) ? null : body, {
    status: head.status,
    statusText: head.statusText,
    headers: headersFromPairs(head.headers),
  });
}
