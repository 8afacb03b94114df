/**
 * The JSON views of nodes, services and users the API answers with, built
 * once here for every route module that shows them (nodes, services, admin,
 * the dashboard's live updates).
 */
import { deployableResources, type NodeLoad } from '@peerway/protocol';
import type { NodeRecord, Store, User } from '../store/store';
import { serviceOrigin, type OriginConfig } from '../web/service-origin';

/** What the HTTP layer needs to know about live connections. */
export interface PresenceView {
  isOnline(nodeId: string): boolean;
  /** The load the node reported last (sessions, CPU, memory, bandwidth). */
  load?(nodeId: string): NodeLoad | undefined;
}

/** The store reads the views make. */
export type ViewStore = Pick<
  Store,
  | 'allocatedOn'
  | 'getService'
  | 'getUserById'
  | 'listDeployGrants'
  | 'listNodeServices'
  | 'listNodesByOwner'
  | 'listServeGrants'
  | 'listServiceNodes'
  | 'listServicesByOwner'
  | 'listShares'
>;

/** A user as the API shows one (never a password hash). */
export function publicUser(u: User) {
  return { id: u.id, email: u.email, isAdmin: u.isAdmin, createdAt: u.createdAt };
}

/** Builds the node and service views over a store and the live presence. */
export function createViews(deps: {
  store: ViewStore;
  presence: PresenceView;
  config: OriginConfig;
}) {
  const { store, presence, config } = deps;
  const serviceUrl = (name: string) => `${serviceOrigin(config, name)}/`;
  const node = async (n: NodeRecord) => {
    const services = await store.listNodeServices(n.id);
    const r = n.resources;
    const deployers = await Promise.all(
      (await store.listDeployGrants(n.id)).map(async (id) => (await store.getUserById(id))?.email),
    );
    return {
      id: n.id,
      shortId: n.shortId,
      name: n.name,
      online: presence.isOnline(n.id),
      lastSeen: n.lastSeen,
      load: presence.load?.(n.id) ?? null,
      isPublic: n.isPublic,
      /** The agent's last report (capacity, the owner's caps, labels), or null before one. */
      resources: r,
      /** What deployments may use in all: the smaller of capacity and the owner's caps. */
      deployable: r ? deployableResources(r) : null,
      /** What the replicas placed on it hold. */
      allocated: await store.allocatedOn(n.id),
      labels: r?.labels ?? {},
      runtime: r?.capacity.runtime ?? null,
      /** Its owner started the agent with --deployments. */
      deployments: r?.deployments ?? false,
      /** Users the owner lets deploy to this node. */
      deployers: deployers.filter(Boolean),
      services: await Promise.all(
        services.map(async (s) => ({
          name: s.name,
          description: s.description,
          url: serviceUrl(s.name),
          access: (await store.getService(s.name))?.access ?? 'private',
        })),
      ),
    };
  };
  return {
    /** The service's URL on its own origin. */
    serviceUrl,
    /** A node with its presence, load and services. */
    node,
    /** The user's nodes. */
    myNodes: async (user: User) => Promise.all((await store.listNodesByOwner(user.id)).map(node)),
    /** The user's services with who may open and serve them, and whether a node serves them now. */
    myServices: async (user: User) => {
      const services = await store.listServicesByOwner(user.id);
      return Promise.all(
        services.map(async (s) => {
          const nodes = await store.listServiceNodes(s.name);
          const shares = await store.listShares(s.name);
          const emails = await Promise.all(
            shares.map(async (id) => (await store.getUserById(id))?.email),
          );
          const servers = await Promise.all(
            (await store.listServeGrants(s.name)).map(
              async (id) => (await store.getUserById(id))?.email,
            ),
          );
          return {
            name: s.name,
            url: serviceUrl(s.name),
            access: s.access,
            sharedWith: emails.filter(Boolean),
            /** Users whose nodes may serve it as well as the owner's (not the same as sharedWith). */
            servedBy: servers.filter(Boolean),
            nodes: nodes.length,
            online: nodes.some((n) => presence.isOnline(n)),
          };
        }),
      );
    },
  };
}

export type Views = ReturnType<typeof createViews>;
