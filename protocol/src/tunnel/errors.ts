import { ResetCode, type ResetCodeValue } from './wire';

const NAMES = Object.fromEntries(Object.entries(ResetCode).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/** A stream (or the whole tunnel) ended abnormally; `code` is a ResetCode. */
export class TunnelError extends Error {
  override readonly name = 'TunnelError';
  constructor(
    readonly code: ResetCodeValue | number,
    readonly reason: string,
  ) {
    super(`${NAMES[code] ?? `code ${code}`}: ${reason}`);
  }
}
