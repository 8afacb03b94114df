/**
 * Request/response/WebSocket heads: small JSON documents, validated on
 * arrival (a malformed head resets its stream). Headers are arrays of pairs
 * so repeated headers (Set-Cookie) survive unchanged.
 */
import { z } from 'zod';
import { MAX_HEAD_BYTES } from './wire';

export { MAX_HEAD_BYTES, type HeaderPairs } from './wire';

const headers = z.array(z.tuple([z.string().max(8192), z.string().max(65536)])).max(256);

export const RequestHeadSchema = z.object({
  method: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z]+$/),
  /** Origin-form path with query: must start with "/". */
  path: z.string().min(1).max(16384),
  headers,
});
export type RequestHead = z.infer<typeof RequestHeadSchema>;

export const ResponseHeadSchema = z.object({
  status: z.number().int().min(100).max(599),
  statusText: z.string().max(256).default(''),
  headers,
});
export type ResponseHead = z.input<typeof ResponseHeadSchema>;

export const WsOpenHeadSchema = z.object({
  path: z.string().min(1).max(16384),
  protocols: z.array(z.string().max(256)).max(16).default([]),
  headers,
});
export type WsOpenHead = z.input<typeof WsOpenHeadSchema>;

export const WsAcceptHeadSchema = z.object({
  protocol: z.string().max(256).default(''),
  headers,
});
export type WsAcceptHead = z.input<typeof WsAcceptHeadSchema>;

/** Parses a head's JSON with its schema; null when malformed. */
export function parseHead<T>(schema: z.ZodType<T>, bytes: Uint8Array): T | null {
  if (bytes.byteLength > MAX_HEAD_BYTES) return null;
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  const r = schema.safeParse(data);
  return r.success ? r.data : null;
}
