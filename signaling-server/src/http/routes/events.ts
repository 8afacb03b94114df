/**
 * Live updates for the dashboard: `GET /api/events` (Server-Sent Events,
 * session cookie or bearer token). The server looks at the caller's view
 * (their nodes and services; with `?admin=1`, for admins, the admin figures)
 * once a second and sends it when it changed. Built from the store and the
 * cluster-wide presence, not from in-process events, so it is right whichever
 * instance the browser is connected to. The page falls back to polling the
 * same JSON when EventSource fails.
 */
import { PeerwayError } from '@peerway/protocol';
import type { User } from '../../store/store';
import { needUser } from '../caller';
import { route } from '../errors';
import type { RouteModule } from '../route-module';
import type { Views } from '../views';

/** How often a stream looks for changes. */
export const EVENTS_CHECK_MS = 1000;
/** A comment line this often keeps proxies from closing an idle stream. */
export const EVENTS_KEEPALIVE_MS = 15_000;
/** Streams one user may hold open at once (tabs, devices). */
export const MAX_STREAMS_PER_USER = 8;

/** The live-updates route: a snapshot of what the dashboard shows, pushed when it changes. */
export function eventRoutes(deps: {
  views: Pick<Views, 'myNodes' | 'myServices'>;
  /** The admin view's figures (sent to admins who ask with `?admin=1`). */
  adminStats(): unknown;
}): RouteModule {
  const snapshot = async (user: User, admin: boolean) => ({
    nodes: await deps.views.myNodes(user),
    services: await deps.views.myServices(user),
    ...(admin && user.isAdmin ? { admin: await deps.adminStats() } : {}),
  });
  const open = new Map<string, number>();
  return (r) => {
    r.get(
      '/api/events',
      route(async (req, res) => {
        const user = needUser(req);
        const n = open.get(user.id) ?? 0;
        if (n >= MAX_STREAMS_PER_USER)
          throw new PeerwayError('rate_limited', 'too many live views open; close a tab');
        open.set(user.id, n + 1);
        const admin = req.query.admin === '1';
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        let last = '';
        let busy = false;
        const push = async () => {
          if (busy) return;
          busy = true;
          try {
            const text = JSON.stringify(await snapshot(user, admin));
            if (text !== last) {
              last = text;
              res.write(`event: snapshot\ndata: ${text}\n\n`);
            }
          } catch {
            res.write(`event: error\ndata: {}\n\n`);
          } finally {
            busy = false;
          }
        };
        await push();
        const check = setInterval(() => void push(), EVENTS_CHECK_MS);
        const keepalive = setInterval(() => res.write(': keep-alive\n\n'), EVENTS_KEEPALIVE_MS);
        req.on('close', () => {
          clearInterval(check);
          clearInterval(keepalive);
          const left = (open.get(user.id) ?? 1) - 1;
          if (left > 0) open.set(user.id, left);
          else open.delete(user.id);
        });
      }),
    );
  };
}
