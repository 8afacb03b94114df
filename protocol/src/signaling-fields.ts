/**
 * Building blocks of the signaling schemas (./signaling-shared.ts,
 * ./signaling-client.ts and ./signaling-agent.ts); not part of the
 * package's exports.
 */
import { z } from 'zod';
import { ERROR_CODES } from './errors';
import { SERVICE_NAME_RE } from './names';

/** Upper bound for one signaling message on the wire, in bytes. */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;
export const MAX_SDP_CHARS = 32 * 1024;
export const MAX_CANDIDATE_CHARS = 1024;
export const MAX_TOKEN_CHARS = 4096;

export const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/);
export const b64url = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9_-]*$/);
export const serviceName = z
  .string()
  .regex(SERVICE_NAME_RE, 'service name must be a DNS label: a-z, 0-9, "-"');
export const token = z.string().min(1).max(MAX_TOKEN_CHARS);
export const sdp = z.string().min(1).max(MAX_SDP_CHARS);
export const errorCode = z.enum(ERROR_CODES);
export const shortText = z.string().max(500);
