/**
 * Job grants: a node's owner lets another user's jobs run on the node
 * (`POST /api/nodes/:id/job-grants {email}`), or every user's
 * (`{public: true}`: the public pool); `DELETE` with the same body (or
 * `?email=` / `?public=1`) takes it back; `GET` lists them. Apart from
 * deploy grants, serving grants and shares. The node's agent still runs
 * jobs only with `--jobs`, and only with the connectors its owner set up.
 */
import type { Request } from 'express';
import { z } from 'zod';
import { PeerwayError } from '@peerway/protocol';
import type { JobStore } from '../../store/jobs';
import type { NodeRecord, Store } from '../../store/store';
import { ownNodeOf } from '../caller';
import { route } from '../errors';
import type { RouteModule } from '../route-module';

const GrantBody = z.union([
  z.strictObject({ email: z.string().min(1).max(320) }),
  z.strictObject({ public: z.literal(true) }),
]);

/** The job-grant routes of a node. */
export function jobGrantRoutes(deps: {
  store: Pick<Store, 'getNode' | 'getNodeByShortId' | 'getUserByEmail' | 'getUserById'> &
    Pick<JobStore, 'addJobGrant' | 'removeJobGrant' | 'listJobGrants'>;
  /** Told when who may use the node for jobs changed (every instance reads it again). */
  grantsChanged(nodeId: string): void;
}): RouteModule {
  const { store } = deps;
  const ownNode = (req: Request): Promise<NodeRecord> => ownNodeOf(store, req);
  const grantOf = async (req: Request, node: NodeRecord): Promise<string> => {
    const raw: unknown =
      req.body && typeof req.body === 'object' && Object.keys(req.body).length > 0
        ? req.body
        : req.query.email !== undefined
          ? { email: String(req.query.email) }
          : ['1', 'true'].includes(String(req.query.public ?? ''))
            ? { public: true }
            : {};
    const r = GrantBody.safeParse(raw);
    if (!r.success)
      throw new PeerwayError(
        'bad_request',
        'say whose jobs: {"email": "user@example.com"} for one user, or {"public": true} for everyone (the public pool)',
      );
    if ('public' in r.data) return '*';
    const u = await store.getUserByEmail(r.data.email);
    if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
    if (u.id === node.ownerId)
      throw new PeerwayError('bad_request', 'your own jobs run on your own nodes already');
    return u.id;
  };
  const view = async (node: NodeRecord) => {
    const grants = await store.listJobGrants(node.id);
    const users = await Promise.all(
      grants.filter((g) => g !== '*').map(async (id) => (await store.getUserById(id))?.email),
    );
    return {
      node: node.shortId,
      public: grants.includes('*'),
      users: users.filter((e): e is string => e !== undefined).sort(),
    };
  };
  return (r) => {
    r.get(
      '/api/nodes/:id/job-grants',
      route(async (req, res) => {
        res.json(await view(await ownNode(req)));
      }),
    );
    r.post(
      '/api/nodes/:id/job-grants',
      route(async (req, res) => {
        const node = await ownNode(req);
        await store.addJobGrant(node.id, await grantOf(req, node));
        deps.grantsChanged(node.id);
        res.status(201).json(await view(node));
      }),
    );
    r.delete(
      '/api/nodes/:id/job-grants',
      route(async (req, res) => {
        const node = await ownNode(req);
        await store.removeJobGrant(node.id, await grantOf(req, node));
        deps.grantsChanged(node.id);
        res.json(await view(node));
      }),
    );
  };
}
