/**
 * Which Host headers the server answers, against DNS rebinding: a page on
 * `evil.example` whose name is made to resolve to this server would
 * otherwise talk to the gateway (or, on a home network, to a server
 * listening on a private address) as if it were its own origin.
 *
 * The gateway answers on its public URL's host, on loopback (`localhost`,
 * 127.0.0.0/8, `[::1]`, for local tooling), on the address it was told to
 * listen on (a lab's or a host's own IP, e.g. `--host 203.0.113.10`) and on
 * the extra names given with `--allowed-host`. `<service>.<base-domain>`
 * hosts go to the service router (which comes first in the app). Any other
 * Host is answered 421 Misdirected Request.
 *
 * The port is not compared: behind a reverse proxy the Host's port is the
 * proxy's, and a rebinding attack is about names, not ports.
 */
import { isIP } from 'node:net';
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import { serviceFromHost } from '../web/service-origin';

export interface HostConfig {
  publicUrl: string;
  baseDomain: string;
  /** The address the server listens on (its own literal is a configured name too). */
  host?: string;
  allowedHosts?: readonly string[];
}

/** The host name of a Host header: lower case, without port and IPv6 brackets. */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  return h.replace(/:\d*$/, '').replace(/\.$/, '');
}

function isLoopback(name: string): boolean {
  if (name === 'localhost' || name === '::1') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}

/** A predicate: whether a Host header names this server's gateway. */
export function gatewayHostCheck(cfg: HostConfig): (host: string | undefined) => boolean {
  const names = new Set<string>([
    new URL(cfg.publicUrl).hostname.toLowerCase().replace(/^\[|\]$/g, ''),
    ...(cfg.allowedHosts ?? []).map((h) => h.toLowerCase()),
  ]);
  // A specific listen address is a name the operator gave; 0.0.0.0 and :: are not.
  if (cfg.host && isIP(cfg.host) && cfg.host !== '0.0.0.0' && cfg.host !== '::')
    names.add(cfg.host.toLowerCase());
  return (host) => {
    if (!host) return false;
    const name = hostnameOf(host);
    return names.has(name) || isLoopback(name);
  };
}

/** A predicate: whether the server answers this Host at all (the gateway, or a service origin). */
export function knownHostCheck(cfg: HostConfig): (host: string | undefined) => boolean {
  const gateway = gatewayHostCheck(cfg);
  return (host) => gateway(host) || serviceFromHost(host, cfg.baseDomain) !== null;
}

/**
 * Middleware for after the service router: a request whose Host is not the
 * gateway's gets 421 and nothing else.
 */
export function requireGatewayHost(cfg: HostConfig): RequestHandler {
  const ok = gatewayHostCheck(cfg);
  return (req: Request, res: Response, next: NextFunction) => {
    if (ok(req.headers.host)) return next();
    res
      .status(421)
      .type('text/plain')
      .send(
        `This Peerway server does not answer for the host "${String(req.headers.host ?? '').slice(0, 100)}". ` +
          `Open ${cfg.publicUrl}/ instead (or, for the server's admin: add the name with --allowed-host).\n`,
      );
  };
}
