/**
 * The broker's access checks: whose token opens which service, and which
 * nodes may serve it. Asked at each session, and again whenever a service's
 * access, shares or serving grants change, against what the store says now.
 */
import { PeerwayError, type ServiceAnnouncement } from '@peerway/protocol';
import { importServerKey, verifyServiceAccessToken } from '@peerway/protocol/node';
import type { CryptoKey } from 'jose';
import type { ServiceRecord, Store } from '../store/store';
import { deploymentServingRight } from '../cluster/serving';

/** Who a valid service access token speaks for, and on what right. */
export interface TokenRight {
  subject: string;
  access: 'public' | 'private';
}

export class Access {
  private publicKey: Promise<CryptoKey> | null = null;

  constructor(
    private readonly store: Pick<
      Store,
      'getNode' | 'hasServeGrant' | 'hasShare' | 'getDeployment' | 'listAllocations'
    >,
    private readonly serverKeys: { publicJwk: Record<string, unknown>; issuer: string },
  ) {}

  private key(): Promise<CryptoKey> {
    this.publicKey ??= importServerKey(this.serverKeys.publicJwk);
    return this.publicKey;
  }

  /** Verifies a service access token for `service`; throws if it is not one. */
  async token(token: string, service: string): Promise<TokenRight> {
    return verifyServiceAccessToken(token, {
      publicKey: await this.key(),
      issuer: this.serverKeys.issuer,
      service,
    });
  }

  /**
   * Why `subject` may not open `svc` now, or null if it may: anyone may
   * open a public service; otherwise its owner, or a user it is shared with
   * while its access is `shared`.
   */
  async denial(svc: ServiceRecord, subject: string): Promise<PeerwayError | null> {
    if (svc.access === 'public' || subject === svc.ownerId) return null;
    if (svc.access === 'shared' && (await this.store.hasShare(svc.name, subject))) return null;
    return subject === 'anonymous'
      ? new PeerwayError('unauthorized', `"${svc.name}" is private now: sign in to open it`)
      : new PeerwayError('forbidden', `access to "${svc.name}" was withdrawn by its owner`);
  }

  /**
   * A node may serve a service if its owner owns the service, or the owner
   * granted the node's owner the right to serve it (a share to view is not
   * enough). A deployment's service is served only by nodes that run a
   * healthy replica of it (whoever owns them). Checked at each session, so
   * taking a grant back, or a replica that stops running, stops that
   * replica at once.
   */
  async mayServe(nodeId: string, svc: ServiceRecord): Promise<boolean> {
    const node = await this.store.getNode(nodeId);
    if (!node?.ownerId) return false;
    const deployed = await deploymentServingRight(this.store, nodeId, svc.name);
    if (deployed !== null) return deployed;
    return node.ownerId === svc.ownerId || this.store.hasServeGrant(svc.name, node.ownerId);
  }
}

/**
 * Whether a node declared `service` private: it serves it only to tokens of
 * an own right (owner or share), and would refuse a public one.
 */
export function declaredPrivate(
  announced: readonly ServiceAnnouncement[],
  service: string,
): boolean {
  return announced.some((x) => x.name === service && !x.public);
}
