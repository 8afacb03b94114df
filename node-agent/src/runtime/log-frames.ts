/**
 * The Docker API's multiplexed log stream (containers without a TTY): frames
 * of an 8-byte header (stream 1 = stdout, 2 = stderr; bytes 4..7 the payload
 * length, big-endian) then the payload. A body that does not start like a
 * frame is taken as plain text (a TTY container's log is not multiplexed).
 */

/** Joins the payloads of a multiplexed log body into one text, in order. */
export function demuxLogs(body: Buffer): string {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at + 8 <= body.length) {
    const stream = body[at];
    if (body[at + 1] !== 0 || body[at + 2] !== 0 || body[at + 3] !== 0 || stream! > 2) break;
    const len = body.readUInt32BE(at + 4);
    chunks.push(body.subarray(at + 8, Math.min(body.length, at + 8 + len)));
    at += 8 + len;
  }
  if (at === 0 && body.length > 0) return body.toString('utf8');
  return Buffer.concat(chunks).toString('utf8');
}
