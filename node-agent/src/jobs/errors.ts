/**
 * How a job's attempt fails, as the worker reports it: in words, and
 * whether another attempt could go better (`retryable`). A bad lease (an
 * unknown type, an input that does not parse, a requirement this node does
 * not meet) is never retryable here: the next attempt would get the same.
 */
export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The job's AbortSignal fired: why, in words (its `reason` when it is a string or an Error). */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (typeof r === 'string') return r;
  if (r instanceof Error) return r.message;
  return 'aborted';
}

/** Throws a retryable JobError with the abort's reason when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new JobError(abortReason(signal), true);
}

/** Resolves after `ms`, or rejects with the abort's reason when `signal` fires first. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new JobError(abortReason(signal), true));
    const onAbort = () => {
      clearTimeout(t);
      reject(new JobError(abortReason(signal), true));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
