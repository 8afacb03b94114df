/** What monitoring reads: `GET /healthz` and `GET /metrics` (Prometheus). */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import { PeerwayError } from '@peerway/protocol';
import { route } from '../errors';
import type { RouteModule } from '../route-module';

/** The health and metrics routes; with `metricsToken`, /metrics needs it as a bearer token. */
export function metricsRoutes(deps: {
  metrics: Pick<Registry, 'contentType' | 'metrics'>;
  metricsToken?: string | undefined;
}): RouteModule {
  return (r) => {
    r.get('/healthz', (_req, res) => {
      res.json({ ok: true });
    });
    const metricsAllowed = metricsTokenCheck(deps.metricsToken);
    r.get(
      '/metrics',
      route(async (req, res) => {
        if (!metricsAllowed(req.headers.authorization)) {
          res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
          throw new PeerwayError(
            'unauthorized',
            'the metrics need "Authorization: Bearer <the server\'s --metrics-token>"',
          );
        }
        res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
      }),
    );
  };
}

/** Whether an Authorization header carries the metrics token (always, when none is set). */
function metricsTokenCheck(
  token: string | undefined,
): (authorization: string | undefined) => boolean {
  if (!token) return () => true;
  const want = createHash('sha256').update(token).digest();
  return (authorization) => {
    const given = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : '';
    // Digests of equal length, compared in constant time: the answer's timing
    // says nothing about how much of a guess was right.
    return timingSafeEqual(createHash('sha256').update(given).digest(), want);
  };
}
