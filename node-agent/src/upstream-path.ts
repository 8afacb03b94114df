/**
 * The one decision of where a visitor's request goes on the upstream: the
 * declared path prefix, then the visitor's path, then its query. Nothing
 * here resolves a URL: the result is only ever put after the declared
 * origin as a string (HTTP: `path` of http.request; WebSocket: after
 * `ws://<declared host:port>`), so the visitor picks a path and never a host.
 *
 * A path is refused, not repaired, when an upstream or a URL parser on the
 * way could read it as something other than a path under the prefix:
 * backslashes (WHATWG URL reads `\` as `/` for http(s), so `/\host:port`
 * turns scheme-relative), a leading `//`, absolute-form targets, dot
 * segments raw or encoded (`..`, `%2e%2e`, `..;` as Tomcat reads it),
 * encoded slashes and backslashes (`%2f`, `%5c`: upstreams that decode
 * before routing turn `..%2f` into `../`), the same hidden one level deeper
 * (`%252e`), overlong UTF-8 (`%c0%ae`), control characters, spaces and
 * non-ASCII. Browsers send none of these for a normal link: they resolve
 * dot segments and percent-encode the rest before a request leaves them.
 */
import { PeerwayError } from '@peerway/protocol';

/**
 * Characters a request path may carry raw: RFC 3986 pchar (unreserved,
 * sub-delims, ":", "@"), "%" for encodings, "/" between segments, and the
 * few that browsers leave raw in a path although RFC 3986 does not list
 * them (`|`, `^`, `[`, `]`). Anything else (`\`, `"`, `<`, `>`, backtick,
 * `{`, `}`, space, controls, non-ASCII) is refused.
 */
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/|^[\]]*$/;
/** A query may carry any printable ASCII but "#" (a fragment never belongs in a request). */
const QUERY_CHARS = /^[\x21-\x22\x24-\x7e]*$/;
/** Encodings that would become a separator, a dot or a control character once decoded. */
const ENCODED_FORBIDDEN = /%(2e|2f|5c|[01][0-9a-f]|7f)/i;
/** How many times over an encoded "%" is unwrapped and checked again (each costs a pass). */
const MAX_DECODE_DEPTH = 3;
/** A "%" not followed by two hex digits. */
const MALFORMED_PERCENT = /%(?![0-9a-f]{2})/i;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why a request path is refused: a sentence for the visitor's 400. */
function refusePath(path: string): string | null {
  if (path.includes('\\')) return 'the request path contains a backslash';
  if (CONTROL.test(path) || /\s/.test(path))
    return 'the request path contains control characters or spaces';
  if (!PATH_CHARS.test(path)) {
    const bad = [...path].find((c) => !PATH_CHARS.test(c)) ?? '';
    const shown = /^[\x21-\x7e]$/.test(bad) ? `"${bad}"` : 'a non-ASCII character';
    return `the request path contains ${shown}, which must be percent-encoded`;
  }
  if (MALFORMED_PERCENT.test(path)) return 'the request path has a malformed percent-encoding';
  if (path.split('/').some((seg) => /^\.\.?$/.test(seg.split(';')[0]!)))
    return 'the request path contains a "." or ".." segment';
  // What an upstream sees after decoding once, and again (double decoding
  // is a bug, but a common one): an encoded "%" may hide any of the above.
  for (let level = path, depth = 0; ; level = level.replace(/%25/gi, '%'), depth++) {
    if (depth > MAX_DECODE_DEPTH)
      return 'the request path is percent-encoded more times over than any client does';
    if (ENCODED_FORBIDDEN.test(level))
      return 'the request path contains an encoded slash, backslash, dot or control character (%2f, %5c, %2e, %00-%1f)';
    if (MALFORMED_PERCENT.test(level)) break; // "%25zz": a literal "%zz", nothing hidden
    try {
      // fatal: overlong forms such as %c0%ae ("." to old decoders) are no UTF-8
      new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(percentBytes(level)));
    } catch {
      return 'the request path is not percent-encoded UTF-8';
    }
    if (!/%25/i.test(level)) break;
  }
  return null;
}

/** The bytes of a string whose only non-ASCII content is %XX escapes. */
function* percentBytes(s: string): Generator<number> {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      yield parseInt(s.slice(i + 1, i + 3), 16);
      i += 2;
    } else yield s.charCodeAt(i);
  }
}

/**
 * The path (with query) to ask the upstream for: `prefix` (the declared
 * target's path, "" or "/app") followed by the visitor's `target`, which
 * must be origin-form (`/path[?query]`). Throws `bad_request` with a
 * sentence for the visitor when the target could leave the declared origin
 * or prefix. The result always starts with `prefix + "/"`.
 */
export function upstreamPath(prefix: string, target: string): string {
  if (!target.startsWith('/'))
    throw new PeerwayError(
      'bad_request',
      'the request target must be a path starting with "/" (no absolute URLs or authorities)',
    );
  if (target.startsWith('//'))
    throw new PeerwayError(
      'bad_request',
      'the request target must start with a single "/" ("//" would name another host)',
    );
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  const refused = refusePath(path);
  if (refused) throw new PeerwayError('bad_request', refused);
  if (!QUERY_CHARS.test(query.slice(1)))
    throw new PeerwayError(
      'bad_request',
      'the query string contains control characters, spaces, "#" or non-ASCII',
    );
  const base = prefix === '/' ? '' : prefix.replace(/\/+$/, '');
  return base + path + query;
}

/** The declared target's origin and path prefix, from a normalised target URL. */
export function declaredUpstream(target: string): {
  protocol: 'http:' | 'https:';
  /** host[:port] as declared. */
  host: string;
  hostname: string;
  port: string;
  /** "" or a path without trailing "/" ("/app"). */
  prefix: string;
} {
  const u = new URL(target);
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new PeerwayError('bad_request', `target "${target}" must be http or https`);
  // The prefix is the owner's, but it goes through the same check: a
  // prefix with a dot segment would not be a prefix.
  const prefix = u.pathname.replace(/\/+$/, '');
  if (prefix && refusePath(prefix))
    throw new PeerwayError('bad_request', `the target's path "${prefix}" is not a plain path`);
  return {
    protocol: u.protocol,
    host: u.host,
    hostname: u.hostname,
    port: u.port,
    prefix,
  };
}
