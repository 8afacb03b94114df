/**
 * Service names become DNS labels (`<service>.<base-domain>`), so they follow
 * the hostname label rules, lower case only. A few names are kept for the
 * gateway itself.
 */
export const SERVICE_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set([
  'www',
  'api',
  'app',
  'admin',
  'dashboard',
  'auth',
  'login',
  'signaling',
  'turn',
  'stun',
  'static',
  'assets',
  'mail',
  'peerway',
]);

/** True when `name` may be used as a service name. */
export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME_RE.test(name) && !RESERVED_SERVICE_NAMES.has(name);
}
