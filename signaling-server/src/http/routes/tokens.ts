/** Personal access tokens (`/api/tokens`): for scripts, the CLI and `peerway-agent login`. */
import { z } from 'zod';
import { PeerwayError } from '@peerway/protocol';
import type { Auth } from '../../auth/auth';
import type { Store } from '../../store/store';
import { needUser } from '../caller';
import { body, route } from '../errors';
import type { RouteModule } from '../route-module';

const TokenBody = z.object({
  name: z.string().min(1).max(64).default('token'),
  /** Unset: the token lives until revoked. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
const DAY_MS = 24 * 3600 * 1000;

/** The caller's own tokens: create, list (never the secret again), revoke. */
export function tokenRoutes(deps: {
  auth: Pick<Auth, 'createAccessToken' | 'tokens'>;
  store: Pick<Store, 'listAccessTokens' | 'deleteAccessToken'>;
}): RouteModule {
  const { auth, store } = deps;
  return (r) => {
    r.post(
      '/api/tokens',
      route(async (req, res) => {
        const user = needUser(req);
        const b = body(TokenBody, req);
        const t = await auth.createAccessToken(
          user.id,
          b.name,
          b.expiresInDays === undefined ? undefined : b.expiresInDays * DAY_MS,
        );
        res.status(201).json(t);
      }),
    );
    r.get(
      '/api/tokens',
      route(async (req, res) => {
        const user = needUser(req);
        const list = await store.listAccessTokens(user.id);
        res.json({
          tokens: list.map((t) => ({
            id: t.id,
            name: t.name,
            createdAt: t.createdAt,
            lastUsedAt: t.lastUsedAt,
            expiresAt: t.expiresAt,
          })),
        });
      }),
    );
    r.delete(
      '/api/tokens/:id',
      route(async (req, res) => {
        const user = needUser(req);
        const id = String(req.params.id);
        if (!(await store.deleteAccessToken(user.id, id)))
          throw new PeerwayError('not_found', 'no such token');
        auth.tokens.forget({ tokenId: id });
        res.json({ ok: true });
      }),
    );
  };
}
