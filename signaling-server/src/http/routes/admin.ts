/** The admin views (`/api/admin/*`): users, nodes, and the signaling figures. */
import type { Store } from '../../store/store';
import { needAdmin } from '../caller';
import { route } from '../errors';
import type { RouteModule } from '../route-module';
import { publicUser, type PresenceView, type Views } from '../views';

/** Nodes the admin node list shows at most. */
const ADMIN_NODES_MAX = 1000;

/** The admin routes; every one needs an admin account. */
export function adminRoutes(deps: {
  store: Pick<Store, 'listUsers' | 'listAllNodes' | 'countUnclaimedNodes'>;
  views: Pick<Views, 'node'>;
  presence: PresenceView;
  /** Read-only figures of the signaling server (and TURN) for the admin page. */
  adminStats(): unknown;
}): RouteModule {
  const { store, views, presence } = deps;
  return (r) => {
    r.get(
      '/api/admin/users',
      route(async (req, res) => {
        needAdmin(req);
        res.json({ users: (await store.listUsers()).map(publicUser) });
      }),
    );
    r.get(
      '/api/admin/nodes',
      route(async (req, res) => {
        needAdmin(req);
        // Unclaimed keys are anyone's to make: they are counted, and listed
        // only while online (or with ?unclaimed=1), so the view stays small.
        const all = req.query.unclaimed === '1';
        const nodes = (await store.listAllNodes()).filter(
          (n) => all || n.ownerId || presence.isOnline(n.id),
        );
        res.json({
          nodes: await Promise.all(
            nodes.slice(0, ADMIN_NODES_MAX).map(async (n) => ({
              ...(await views.node(n)),
              ownerId: n.ownerId,
            })),
          ),
          truncated: nodes.length > ADMIN_NODES_MAX,
          unclaimed: await store.countUnclaimedNodes(),
        });
      }),
    );
    r.get(
      '/api/admin/signaling',
      route(async (req, res) => {
        needAdmin(req);
        res.json(await deps.adminStats());
      }),
    );
  };
}
