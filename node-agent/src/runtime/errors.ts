/**
 * Errors of the container runtime. The code is stable (the deployment code
 * maps it to a replica state); the message says what happened in words and,
 * where it can, what the node's owner can do about it.
 */
export const RUNTIME_ERROR_CODES = [
  /** No engine answers on the socket, or none could be started. */
  'runtime_unavailable',
  /** The image reference is not a valid reference. */
  'bad_image',
  /** The image's registry is not on the owner's allow-list. */
  'registry_not_allowed',
  /** The registry answered that it has no such image or tag. */
  'image_not_found',
  /** The pull failed for another reason (registry unreachable, auth, TLS…). */
  'pull_failed',
  /** The engine refused to create or start the container. */
  'run_failed',
  /** No such container. */
  'not_found',
  /** A container of the same name already exists. */
  'conflict',
] as const;
export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[number];

export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The engine's own words from a dockerode error: the body's `message` when
 * it sent JSON, else the error's message without dockerode's "(HTTP code N)"
 * prefix.
 */
export function engineMessage(err: unknown): string {
  if (err && typeof err === 'object') {
    const json = (err as { json?: unknown }).json;
    if (
      json &&
      typeof json === 'object' &&
      typeof (json as { message?: unknown }).message === 'string'
    ) {
      return (json as { message: string }).message;
    }
    if (typeof json === 'string' && json.trim()) return json.trim();
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return message.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '');
  }
  return String(err);
}

/** The HTTP status of a dockerode error, if it came from the engine. */
export function engineStatus(err: unknown): number | undefined {
  const s =
    err && typeof err === 'object' ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof s === 'number' ? s : undefined;
}

/**
 * The engine says the container does not exist. Docker answers 404; Podman
 * answers 500 "… does not exist in database: no such container" for one it is
 * removing at that moment (seen listing while a replica was being removed).
 */
export function engineNoSuchContainer(err: unknown): boolean {
  if (engineStatus(err) === 404) return true;
  const cause = (err as { json?: { cause?: unknown; message?: unknown } } | null)?.json;
  return (
    engineStatus(err) === 500 &&
    /no such container/i.test(`${cause?.cause ?? ''} ${cause?.message ?? ''}`)
  );
}
