/**
 * Nodes: claiming one (`/api/nodes/claim`, its info, and the short claim
 * links `/c/:code` the agent prints), the caller's node list, the public
 * list, visibility and removal.
 */
import type { Request } from 'express';
import { z } from 'zod';
import { PeerwayError } from '@peerway/protocol';
import { shortIdOf } from '@peerway/protocol/node';
import { claimState, redeemClaim, rememberRemoval } from '../../nodes/claims';
import type { NodeRecord, Store } from '../../store/store';
import { needUser, ownNodeOf } from '../caller';
import { body, route } from '../errors';
import type { RouteModule } from '../route-module';
import type { Views } from '../views';

const ClaimBody = z.object({ claimToken: z.string().min(1).max(4096) });
const VisibilityBody = z.object({ isPublic: z.boolean() });
const DeployerBody = z.object({ email: z.string().min(1).max(320) });

/** The node routes. */
export function nodeRoutes(deps: {
  /** All of it: the claim steps (../../nodes/claims.ts) take the whole store. */
  store: Store;
  views: Pick<Views, 'node' | 'myNodes'>;
  /** Told when a node gets claimed over HTTP, so its live connection learns it. */
  onNodeClaimed(nodeId: string): void;
  /** Told when a node is removed, so its live connection is closed. */
  onNodeRemoved?(nodeId: string): void;
  /** Told when who may deploy to a node changed, so replicas that lost the right stop. */
  onDeployersChanged?(nodeId: string): void;
}): RouteModule {
  const { store, views } = deps;
  return (r) => {
    const ownNode = (req: Request): Promise<NodeRecord> => ownNodeOf(store, req);

    r.post(
      '/api/nodes/claim',
      route(async (req, res) => {
        const user = needUser(req);
        const node = await redeemClaim(store, body(ClaimBody, req).claimToken, user.id, Date.now());
        deps.onNodeClaimed(node.id);
        res.json({ node: await views.node(node), alreadyYours: false });
      }),
    );
    r.get(
      '/api/nodes/claim-info',
      route(async (req, res) => {
        // Lets the add-node page name the node before the user confirms.
        const { claim, state } = await claimState(store, String(req.query.token ?? ''), Date.now());
        res.json({
          name: claim.name,
          shortId: shortIdOf(claim.nodeId),
          expiresAt: claim.exp * 1000,
          claimed: state === 'claimed',
          state,
        });
      }),
    );
    r.get(
      '/c/:code',
      route(async (req, res) => {
        // Short claim links the agent prints: they lead to the add-node page.
        const code = String(req.params.code);
        const token = /^[A-Za-z0-9_-]{1,32}$/.test(code)
          ? await store.peekOneTime('claim', code, Date.now())
          : null;
        // A link whose token was spent, whose node is claimed or was removed
        // since, is gone; its owner, following it again, is shown the node is theirs.
        const c = token ? await claimState(store, token, Date.now()).catch(() => null) : null;
        const owners = c?.state === 'claimed' && !!req.user && c.node?.ownerId === req.user.id;
        if (token && c?.state !== 'open' && !owners) {
          res
            .status(410)
            .type('text/plain')
            .send(
              c?.state === 'claimed'
                ? 'This node has been claimed already: it is in its owner’s node list.\n'
                : 'This claim link has been used or has expired. Run `peerway-agent claim-url` on the node for a new one.\n',
            );
          return;
        }
        if (!token) {
          res
            .status(404)
            .type('text/plain')
            .send(
              'This claim link is unknown or has expired. Run `peerway-agent claim-url` on the node for a new one.\n',
            );
          return;
        }
        res.redirect(302, `/add-node#claim=${token}`);
      }),
    );
    r.get(
      '/api/nodes',
      route(async (req, res) => {
        res.json({ nodes: await views.myNodes(needUser(req)) });
      }),
    );
    r.get(
      '/api/nodes/public',
      route(async (_req, res) => {
        const nodes = await store.listPublicNodes();
        res.json({
          nodes: await Promise.all(
            nodes.map(async (n) => {
              const v = await views.node(n);
              return {
                shortId: v.shortId,
                name: v.name,
                online: v.online,
                lastSeen: v.lastSeen,
                services: v.services.filter((s) => s.access === 'public'),
              };
            }),
          ),
        });
      }),
    );
    r.put(
      '/api/nodes/:id/visibility',
      route(async (req, res) => {
        const node = await ownNode(req);
        await store.setNodeVisibility(node.id, body(VisibilityBody, req).isPublic);
        res.json({ node: await views.node((await store.getNode(node.id))!) });
      }),
    );
    // The right to deploy: the user's deployments may place replicas on this
    // node (its agent still runs them only with --deployments). Apart from
    // serving grants and shares.
    r.post(
      '/api/nodes/:id/deployers',
      route(async (req, res) => {
        const node = await ownNode(req);
        const u = await store.getUserByEmail(body(DeployerBody, req).email);
        if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
        if (u.id === node.ownerId)
          throw new PeerwayError('bad_request', 'you deploy to your own nodes already');
        await store.addDeployGrant(node.id, u.id);
        deps.onDeployersChanged?.(node.id);
        res.status(201).json({ node: await views.node((await store.getNode(node.id))!) });
      }),
    );
    r.delete(
      '/api/nodes/:id/deployers/:email',
      route(async (req, res) => {
        const node = await ownNode(req);
        const u = await store.getUserByEmail(String(req.params.email));
        if (u) await store.removeDeployGrant(node.id, u.id);
        deps.onDeployersChanged?.(node.id);
        res.json({ node: await views.node((await store.getNode(node.id))!) });
      }),
    );
    r.delete(
      '/api/nodes/:id',
      route(async (req, res) => {
        const node = await ownNode(req);
        await rememberRemoval(store, node.id, Date.now());
        await store.deleteNode(node.id);
        // Its live connection (on whichever instance) goes too: a removed node serves nothing.
        deps.onNodeRemoved?.(node.id);
        res.json({ ok: true });
      }),
    );
  };
}
