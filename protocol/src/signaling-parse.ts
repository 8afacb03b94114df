/**
 * The one way a signaling message is parsed: size, UTF-8, JSON, then the
 * schema; a typed value or a typed error (./signaling.ts).
 */
import type { z } from 'zod';
import { PeerwayError } from './errors';
import { MAX_SIGNALING_MESSAGE_BYTES } from './signaling-fields';

export type ParseResult<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      error: PeerwayError;
      /** The `type` the message claimed, when it had a string one. */
      claimedType?: string;
      /** True when the message was well-formed JSON of a type this side does not know. */
      unknownType: boolean;
    };

type Raw = string | Buffer | ArrayBuffer | Uint8Array | Buffer[];

function toText(raw: Raw): string {
  if (typeof raw === 'string') return raw;
  const dec = new TextDecoder('utf-8', { fatal: true });
  if (Array.isArray(raw)) {
    const total = raw.reduce((n, b) => n + b.byteLength, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const b of raw) {
      out.set(b, off);
      off += b.byteLength;
    }
    return dec.decode(out);
  }
  return dec.decode(raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw);
}

function byteLength(raw: Raw): number {
  if (typeof raw === 'string') return raw.length * 3; // worst case UTF-8; exact check below
  if (Array.isArray(raw)) return raw.reduce((n, b) => n + b.byteLength, 0);
  return raw.byteLength;
}

/** A parser for one direction's union. */
export function makeParser<T>(schema: z.ZodType<T>, knownTypes: ReadonlySet<string>) {
  return (raw: Raw): ParseResult<T> => {
    const fail = (error: PeerwayError, claimedType?: string, unknownType = false) => ({
      ok: false as const,
      error,
      unknownType,
      ...(claimedType === undefined ? {} : { claimedType }),
    });
    if (byteLength(raw) > MAX_SIGNALING_MESSAGE_BYTES) {
      const bytes =
        typeof raw === 'string' ? new TextEncoder().encode(raw).byteLength : byteLength(raw);
      if (bytes > MAX_SIGNALING_MESSAGE_BYTES) {
        return fail(
          new PeerwayError(
            'message_too_large',
            `message is ${bytes} bytes; the limit is ${MAX_SIGNALING_MESSAGE_BYTES}`,
          ),
        );
      }
    }
    let data: unknown;
    try {
      data = JSON.parse(toText(raw));
    } catch (cause) {
      return fail(new PeerwayError('bad_message', 'message is not valid UTF-8 JSON', { cause }));
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return fail(new PeerwayError('bad_message', 'message must be a JSON object'));
    }
    const type = (data as { type?: unknown }).type;
    if (typeof type !== 'string') {
      return fail(new PeerwayError('bad_message', 'message has no string "type"'));
    }
    const claimedType = type.slice(0, 64);
    if (!knownTypes.has(type)) {
      return fail(
        new PeerwayError('bad_message', `unknown message type "${claimedType}"`),
        claimedType,
        true,
      );
    }
    const result = schema.safeParse(data);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'message';
      return fail(
        new PeerwayError(
          'bad_message',
          `invalid "${claimedType}" message: ${where}: ${issue?.message ?? 'invalid'}`,
        ),
        claimedType,
      );
    }
    return { ok: true, value: result.data };
  };
}

/** The `type` values of a discriminated union's members. */
export function typesOf(schema: {
  options: readonly { shape: { type: { value: string } } }[];
}): Set<string> {
  return new Set(schema.options.map((o) => o.shape.type.value));
}
