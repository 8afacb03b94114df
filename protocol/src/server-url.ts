/** The server URL a person types for the agent or the `peerway` CLI. */
import { PeerwayError } from './errors';

/**
 * Checks a server URL as a user typed it and returns it without trailing
 * slashes; throws saying what to type instead. Only an origin: the agent finds
 * /ws/agent under it, and the API and the `peerway` CLI /api/.
 */
export function parseServerUrl(raw: string): string {
  const s = raw.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    const bare = s.replace(/^\/+/, '');
    throw new PeerwayError(
      'bad_request',
      `"${raw}" is not a server URL: it needs its scheme. Type http://${bare} ` +
        `(or https://${bare} for a server with TLS)`,
    );
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new PeerwayError(
      'bad_request',
      `"${raw}" is not a server URL: type it like http://localhost:8080 or https://peerway.example`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new PeerwayError(
      'bad_request',
      `"${raw}" is not a server URL: it must start with http:// or https://`,
    );
  if (u.username || u.password)
    throw new PeerwayError(
      'bad_request',
      `"${raw}": put no user name or password in the server URL`,
    );
  if (u.pathname !== '/' || u.search || u.hash)
    throw new PeerwayError(
      'bad_request',
      `"${raw}" is not a server URL: give only its origin, type ${u.protocol}//${u.host}`,
    );
  return `${u.protocol}//${u.host}`;
}
