/**
 * Injects the Peerway shim into an HTML response as it streams: the script
 * tag goes right after `<head …>` (or after the doctype / at the start when
 * there is none), so it runs before the app's own scripts. Only the first
 * few KiB are held back while looking for the spot.
 */
const LOOKAHEAD_BYTES = 4096;

export function injectShim(
  body: ReadableStream<Uint8Array>,
  tag: string,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let pending = '';
  let done = false;
  const flushWith = (ctrl: TransformStreamDefaultController<Uint8Array>, force: boolean) => {
    const head = /<head(\s[^>]*)?>/i.exec(pending);
    let at = -1;
    if (head) at = head.index + head[0].length;
    else if (force || pending.length >= LOOKAHEAD_BYTES) {
      const doctype = /<!doctype[^>]*>/i.exec(pending);
      const html = /<html(\s[^>]*)?>/i.exec(pending);
      at = html ? html.index + html[0].length : doctype ? doctype.index + doctype[0].length : 0;
    }
    if (at < 0) return;
    ctrl.enqueue(enc.encode(pending.slice(0, at) + tag + pending.slice(at)));
    pending = '';
    done = true;
  };
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        if (done) return ctrl.enqueue(chunk);
        pending += dec.decode(chunk, { stream: true });
        flushWith(ctrl, false);
      },
      flush(ctrl) {
        if (!done) {
          pending += dec.decode();
          flushWith(ctrl, true);
        }
      },
    }),
  );
}
