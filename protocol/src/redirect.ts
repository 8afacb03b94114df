/**
 * Return targets (`next=`, `return=`) that never leave their origin. Shared by
 * the server (gateway sign-in, /authorize) and the shell (its callback), so
 * both sides read a target the way a browser will: with the WHATWG URL
 * parser, which strips tabs and newlines, turns `\` into `/` and removes dot
 * segments. A prefix check on the raw string misses all three (`/\tevil`,
 * `/\evil.com`, `/.//evil.com` each become `//evil.com`). Browser-safe: no
 * Node imports.
 */

/** Longer targets are refused rather than carried around (a deep link is never this long). */
export const MAX_RETURN_TARGET_CHARS = 2048;

/**
 * The path (with query and fragment) of `target` resolved against `origin`,
 * if the result stays on that origin; `fallback` otherwise (also for
 * anything that is not a string, cannot be parsed, or is too long). The
 * result always starts with exactly one `/`, so wherever it is used next (a
 * Location header, `location.assign`) it is read as a path on the current
 * origin, never as a scheme-relative URL.
 */
export function sameOriginPath(target: unknown, origin: string, fallback = '/'): string {
  if (typeof target !== 'string' || target.length > MAX_RETURN_TARGET_CHARS) return fallback;
  let base: URL;
  let url: URL;
  try {
    base = new URL(origin);
    url = new URL(target, base);
  } catch {
    return fallback;
  }
  if (url.origin === 'null' || url.origin !== base.origin) return fallback;
  const path = url.pathname + url.search + url.hash;
  // Dot segments can leave a pathname of `//host`: as a relative URL that is
  // another host, so it is refused too.
  if (!path.startsWith('/') || path.startsWith('//')) return fallback;
  return path;
}
