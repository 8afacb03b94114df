/**
 * One agent connection: challenge → auth (signed proof) → welcome, then
 * heartbeats, service announcements, its half of session signaling, and the
 * cluster's messages (its resources, its replicas' states; its desired set
 * of replicas sent to it), and its job messages, which go to the jobs broker.
 */
import { randomBytes } from 'node:crypto';
import {
  PeerwayError,
  isValidServiceName,
  type AllocationAssignment,
  type AllocationReport,
  type AgentToServer,
  type NodeResources,
  type NodeLoad,
  type ServerToAgent,
  type ServiceAnnouncement,
} from '@peerway/protocol';
import { newNonce, shortIdOf, verifyChallenge } from '@peerway/protocol/node';
import { claimState } from '../nodes/claims';
import type { Peer } from './peer';
import { CloseCode } from './peer';
import type { Broker, LocalAgent } from './broker';
import type { SignalingContext } from './context';
import { serviceOrigin } from '../web/service-origin';
import type { JobAgentMessage } from '../jobs/broker';

/** How long an agent has to answer the challenge. */
export const AUTH_TIMEOUT_MS = 10_000;
const CLAIM_LINK_TTL_MS = 24 * 3600 * 1000;

/** Most replicas one `allocations` message carries (the protocol's limit). */
const MAX_ASSIGNMENTS = 256;

/** What an agent connection asks of the cluster's server side (cluster/deployments.ts). */
export interface AgentDeployments {
  /** Keeps the node's resource report; its set is sent after it. */
  resourcesReported(nodeId: string, r: NodeResources): Promise<void>;
  /** Records its replicas' states; the deployments whose serving nodes may have changed. */
  statusReported(nodeId: string, reports: readonly AllocationReport[]): Promise<string[]>;
  /** The replicas the node should run now. */
  assignments(nodeId: string): Promise<AllocationAssignment[]>;
  /** null when `service` is no deployment, else whether the node runs a healthy replica of it. */
  mayServe(nodeId: string, service: string): Promise<boolean | null>;
  /** A pass of the reconciler soon (a node's drain changed). */
  kick(): void;
}

/** What an agent connection asks of the jobs broker: it takes every job message. */
export interface AgentJobs {
  agentMessage(conn: AgentConnection, m: JobAgentMessage): Promise<void>;
}

/** This instance's table of authenticated agents (it tells the cluster of them). */
export interface AgentRegistry {
  register(a: AgentConnection): void;
  unregister(a: AgentConnection): void;
  /** The agent's load, draining flag or accepted services changed. */
  updated(a: AgentConnection): void;
}

export class AgentConnection implements LocalAgent {
  nodeId = '';
  shortId = '';
  name = '';
  authed = false;
  /** Registered with the agent table (and the cluster). */
  registered = false;
  /** When this connection authenticated, on the server clock. */
  connectedAt = 0;
  draining = false;
  load: NodeLoad | undefined;
  announced: ServiceAnnouncement[] = [];
  /** Services the server accepted for routing. */
  accepted = new Set<string>();
  /** The agent sent its resources: it takes `allocations` from now on. */
  resourcesReported = false;
  /** The last set sent, as sent (a resync sends only a different one). */
  private lastAssignments: string | null = null;
  /** Messages that change the node's state run one after another, in the order sent. */
  private serial: Promise<unknown> = Promise.resolve();
  private sending: Promise<void> = Promise.resolve();
  private readonly nonce = newNonce();
  private authTimer: unknown;
  readonly onPresenceTimeout = () =>
    this.peer.close(CloseCode.PRESENCE_TIMEOUT, 'no heartbeat within the presence timeout');

  constructor(
    readonly peer: Peer<AgentToServer, ServerToAgent>,
    private readonly ctx: SignalingContext,
    /** Takes this node's half of session signaling. */
    private readonly broker: Pick<Broker, 'fromAgent'>,
    private readonly registry: AgentRegistry,
    private readonly deployments: AgentDeployments,
    /** The jobs broker (jobs/broker.ts); without it the job messages are refused. */
    private readonly jobs?: AgentJobs,
  ) {}

  start(): void {
    this.peer.send({ type: 'challenge', nonce: this.nonce, serverUrl: this.ctx.config.publicUrl });
    this.authTimer = this.ctx.clock.setTimeout(() => {
      if (!this.authed) this.peer.close(CloseCode.AUTH_TIMEOUT, 'no auth within 10 s');
    }, AUTH_TIMEOUT_MS);
    this.peer.ws.on('close', () => this.closed());
    this.peer.listen((m) => this.handle(m));
  }

  /** Runs `fn` after the state messages before it (auth first: a report right after it waits for it). */
  private inOrder(fn: () => Promise<void>): Promise<void> {
    const run = this.serial.then(fn);
    this.serial = run.catch(() => {});
    return run;
  }

  private async handle(m: AgentToServer): Promise<void> {
    if (m.type === 'auth') return this.inOrder(() => this.auth(m));
    if (!this.authed) throw new PeerwayError('unauthorized', 'answer the challenge first');
    switch (m.type) {
      case 'heartbeat':
        if (m.load) this.load = m.load;
        this.ctx.presence.heartbeat(this.nodeId);
        this.registry.updated(this);
        this.peer.send({ type: 'heartbeat-ack', serverTime: this.ctx.clock.now() });
        return;
      case 'services':
        return this.inOrder(async () => {
          this.announced = m.services;
          await this.evaluateServices();
        });
      case 'drain':
        if (this.draining !== m.draining)
          this.ctx.log.info({ node: this.shortId, draining: m.draining }, 'agent drain changed');
        this.draining = m.draining;
        this.registry.updated(this);
        // the cluster: a draining node's replicas are replaced elsewhere, then stopped
        this.deployments.kick();
        return;
      case 'answer':
      case 'candidate':
      case 'session-reject':
      case 'session-closed':
      case 'session-stats':
        return this.broker.fromAgent(this, m);
      case 'resources':
        return this.inOrder(async () => {
          this.resourcesReported = true;
          await this.deployments.resourcesReported(this.nodeId, m.resources);
        });
      case 'allocation-status':
        return this.inOrder(async () => {
          const changed = await this.deployments.statusReported(this.nodeId, m.allocations);
          if (changed.some((name) => this.announced.some((s) => s.name === name)))
            await this.evaluateServices();
        });
      case 'worker':
      case 'job-pull':
      case 'job-heartbeat':
      case 'job-started':
      case 'job-progress':
      case 'job-result':
      case 'job-failed': {
        const jobs = this.jobs;
        if (!jobs) throw new PeerwayError('bad_message', 'this server does not take jobs');
        // In order: a pull right after `worker` finds the worker registered.
        return this.inOrder(() => jobs.agentMessage(this, m));
      }
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { type: string }).type}`);
      }
    }
  }

  private async auth(m: Extract<AgentToServer, { type: 'auth' }>): Promise<void> {
    if (this.authed) throw new PeerwayError('bad_message', 'already authenticated');
    const now = this.ctx.clock.now();
    try {
      verifyChallenge({
        nodeId: m.nodeId,
        serverUrl: this.ctx.config.publicUrl,
        nonce: this.nonce,
        timestamp: m.timestamp,
        signature: m.signature,
        now,
      });
    } catch (err) {
      const e =
        err instanceof PeerwayError ? err : new PeerwayError('invalid_signature', 'bad proof');
      this.ctx.log.warn({ ip: this.peer.ip, code: e.code }, 'agent proof refused');
      this.peer.send({ type: 'error', code: e.code, message: e.message });
      this.peer.close(CloseCode.BAD_AUTH, e.message);
      return;
    }
    this.ctx.clock.clearTimeout(this.authTimer);
    this.authed = true;
    this.nodeId = m.nodeId;
    this.shortId = shortIdOf(m.nodeId);
    this.name = m.name;
    this.announced = m.services;
    await this.ctx.store.upsertNode({ id: this.nodeId, shortId: this.shortId, name: m.name, now });
    this.connectedAt = now;
    this.registry.register(this);
    this.registered = true;

    if (m.token) {
      const user = await this.ctx.authenticateBearer(m.token);
      if (!user)
        this.peer.send({
          type: 'error',
          code: 'unauthorized',
          message: 'the access token is not valid; run `peerway-agent login` with a fresh one',
        });
      else {
        const r = await this.ctx.store.claimNode(this.nodeId, user.id);
        if (!r.ok)
          this.peer.send({
            type: 'error',
            code: 'conflict',
            message: 'this node is claimed by another account',
          });
      }
    }
    const node = await this.ctx.store.getNode(this.nodeId);
    let claimUrl: string | undefined;
    let shortClaimUrl: string | undefined;
    if (!node?.ownerId && m.claimToken) {
      try {
        const { claim, state } = await claimState(this.ctx.store, m.claimToken, now);
        if (claim.nodeId === this.nodeId && state === 'open') {
          const code = randomBytes(6).toString('base64url');
          await this.ctx.store.putOneTime(
            'claim',
            code,
            m.claimToken,
            Math.min(claim.exp * 1000, now + CLAIM_LINK_TTL_MS),
          );
          claimUrl = `${this.ctx.config.publicUrl}/add-node#claim=${m.claimToken}`;
          shortClaimUrl = `${this.ctx.config.publicUrl}/c/${code}`;
        }
      } catch {
        // A bad claim token only means no short link.
      }
    }
    const owner = node?.ownerId
      ? (await this.ctx.store.getUserById(node.ownerId))?.email
      : undefined;
    const statuses = await this.serviceStatuses(node?.ownerId ?? null);
    this.peer.send({
      type: 'welcome',
      nodeId: this.nodeId,
      shortId: this.shortId,
      claimed: Boolean(node?.ownerId),
      ...(owner ? { owner } : {}),
      ...(claimUrl ? { claimUrl, shortClaimUrl } : {}),
      serverKey: this.ctx.serverKeys.publicJwk,
      tokenIssuer: this.ctx.serverKeys.issuer,
      heartbeatIntervalMs: this.ctx.config.heartbeatIntervalMs,
      services: statuses,
    });
    this.ctx.log.info(
      { node: this.shortId, name: this.name, claimed: Boolean(node?.ownerId), ip: this.peer.ip },
      'agent connected',
    );
  }

  /**
   * Sends the node its desired set of replicas (after its resources, and
   * whenever the set changes); with `onlyIfChanged`, only a set unlike the
   * last one sent (the loop's resync). Sends go out in the order asked.
   */
  sendAllocations(onlyIfChanged = false): Promise<void> {
    const run = this.sending.then(async () => {
      if (!this.authed || !this.resourcesReported || this.peer.closed) return;
      const list = await this.deployments.assignments(this.nodeId);
      if (list.length > MAX_ASSIGNMENTS)
        this.ctx.log.warn(
          { node: this.shortId, replicas: list.length },
          'too many replicas for one node: the rest wait',
        );
      const allocations = list.slice(0, MAX_ASSIGNMENTS);
      const text = JSON.stringify(allocations);
      if (onlyIfChanged && text === this.lastAssignments) return;
      this.lastAssignments = text;
      this.peer.send({ type: 'allocations', allocations });
    });
    const done = run.catch((err: unknown) =>
      this.ctx.log.warn({ err, node: this.shortId }, 'could not send allocations'),
    );
    this.sending = done;
    return done;
  }

  /** Re-evaluates routable services (after a claim or an announcement) and tells the agent. */
  async evaluateServices(): Promise<void> {
    const node = await this.ctx.store.getNode(this.nodeId);
    const statuses = await this.serviceStatuses(node?.ownerId ?? null);
    this.peer.send({ type: 'services-ack', services: statuses });
  }

  /** Claimed node → reserve each name for the owner; returns what was accepted. */
  private async serviceStatuses(ownerId: string | null) {
    const now = this.ctx.clock.now();
    const statuses: { name: string; accepted: boolean; reason?: string; url?: string }[] = [];
    const accepted: { name: string; description: string | null }[] = [];
    for (const s of this.announced) {
      if (!ownerId) {
        statuses.push({
          name: s.name,
          accepted: false,
          reason: 'the node is not claimed yet: open the claim URL',
        });
        continue;
      }
      if (!isValidServiceName(s.name)) {
        statuses.push({
          name: s.name,
          accepted: false,
          reason: `"${s.name}" is reserved for the gateway; pick another name`,
        });
        continue;
      }
      // A deployment's name: served by the nodes running a healthy replica of
      // it, whoever owns them (a deploy grant put the replica there), and no others.
      const deployed = await this.deployments.mayServe(this.nodeId, s.name);
      if (deployed !== null) {
        if (deployed) {
          statuses.push({
            name: s.name,
            accepted: true,
            url: `${serviceOrigin(this.ctx.config, s.name)}/`,
          });
          accepted.push({ name: s.name, description: s.description ?? null });
        } else {
          statuses.push({
            name: s.name,
            accepted: false,
            reason: `"${s.name}" is a deployment: a node serves it only while it runs a healthy replica of it`,
          });
        }
        continue;
      }
      const r = await this.ctx.store.reserveService(
        s.name,
        ownerId,
        s.public ? 'public' : 'private',
        now,
      );
      // A replica: the owner's own node, or the node of someone the owner
      // granted the right to serve it (a share lets a user view it, never
      // serve it: that would hand them the owner's visitors and their tokens).
      if (r.ok || (await this.ctx.store.hasServeGrant(s.name, ownerId))) {
        statuses.push({
          name: s.name,
          accepted: true,
          url: `${serviceOrigin(this.ctx.config, s.name)}/`,
        });
        accepted.push({ name: s.name, description: s.description ?? null });
      } else {
        statuses.push({
          name: s.name,
          accepted: false,
          reason: `the name "${s.name}" belongs to another account; its owner can let your nodes serve it (dashboard: Services → Serving nodes)`,
        });
      }
    }
    if (ownerId) await this.ctx.store.setNodeServices(this.nodeId, accepted);
    this.accepted = new Set(accepted.map((a) => a.name));
    if (this.registered) this.registry.updated(this);
    return statuses;
  }

  private closed(): void {
    this.ctx.clock.clearTimeout(this.authTimer);
    if (this.authed) this.registry.unregister(this);
  }
}
