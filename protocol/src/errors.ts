/**
 * Typed errors shared by every side. A code is stable and machine-readable;
 * the message says what went wrong and, where it can, what to do next.
 * Codes are mapped to HTTP statuses or WebSocket close codes only at the
 * boundary (see `httpStatusFor`).
 */
export const ERROR_CODES = [
  'bad_request',
  'bad_message',
  'message_too_large',
  'rate_limited',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'expired',
  'invalid_signature',
  'replayed',
  'service_offline',
  'service_unknown',
  'node_unclaimed',
  'session_failed',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class PeerwayError extends Error {
  override readonly name = 'PeerwayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  bad_message: 400,
  message_too_large: 413,
  rate_limited: 429,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  expired: 410,
  invalid_signature: 400,
  replayed: 400,
  service_offline: 503,
  service_unknown: 404,
  node_unclaimed: 403,
  session_failed: 502,
  internal: 500,
};

/** The HTTP status an error code maps to at an HTTP boundary. */
export function httpStatusFor(code: ErrorCode): number {
  return HTTP_STATUS[code];
}
