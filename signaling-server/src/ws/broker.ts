/**
 * Session brokering: a client asks for a session to a service with a service
 * access token; the broker checks the token, picks the least-loaded online
 * agent serving the service, and relays offer, answer and trickled ICE
 * candidates. The broker stamps the sender itself: a peer can only signal
 * for sessions it belongs to.
 */
import { randomBytes } from 'node:crypto';
import {
  PeerwayError,
  type AgentToServer,
  type ClientToServer,
  type ServerToClient,
} from '@peerway/protocol';
import { importServerKey, verifyServiceAccessToken } from '@peerway/protocol/node';
import type { CryptoKey } from 'jose';
import type { AgentConnection } from './agent-handler';
import type { SignalingContext } from './context';
import { iceServersFor } from './ice';
import type { Peer } from './peer';
import type { SessionRecord } from './sessions';
import { Sessions } from './sessions';

export type ClientPeer = Peer<ClientToServer, ServerToClient>;

export class Broker {
  readonly sessions = new Sessions();
  private publicKey: Promise<CryptoKey> | null = null;
  /** Sessions per minute, over the last hour (for the admin chart). */
  readonly perMinute = new Map<number, number>();

  constructor(private readonly ctx: SignalingContext) {}

  private key(): Promise<CryptoKey> {
    this.publicKey ??= importServerKey(this.ctx.serverKeys.publicJwk);
    return this.publicKey;
  }

  /** A message from a client. */
  async fromClient(client: ClientPeer, m: ClientToServer): Promise<void> {
    switch (m.type) {
      case 'ping':
        client.send({ type: 'pong' });
        return;
      case 'open':
        return this.open(client, m);
      case 'offer':
      case 'candidate':
      case 'close':
      case 'session-stats': {
        const s = this.ownSession(m.sessionId, (x) => x.clientKey === client);
        const agent = this.ctx.agents.get(s.nodeId);
        if (m.type === 'session-stats') {
          s.clientStats = m.stats;
          this.ctx.metrics.sessionsByType.inc({
            candidate: m.stats.localCandidateType,
            protocol: m.stats.relayProtocol ?? m.stats.protocol,
          });
          return;
        }
        if (m.type === 'close') {
          this.sessions.end(s.id, this.ctx.clock.now());
          agent?.peer.send({
            type: 'session-close',
            sessionId: s.id,
            reason: 'the client closed the session',
          });
          return;
        }
        if (!agent) {
          this.fail(s, 'service_offline', 'the node went offline');
          return;
        }
        if (m.type === 'offer') {
          const pending = this.pendingOpen.get(s.id);
          if (!pending)
            throw new PeerwayError('bad_message', 'the offer for this session was already sent');
          this.pendingOpen.delete(s.id);
          agent.peer.send({
            type: 'session',
            sessionId: s.id,
            service: s.service,
            token: pending.token,
            iceServers: pending.iceServers,
            offer: m.sdp,
          });
        } else {
          agent.peer.send({ type: 'candidate', sessionId: s.id, candidate: m.candidate });
        }
        return;
      }
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { type: string }).type}`);
      }
    }
  }

  private readonly pendingOpen = new Map<
    string,
    { token: string; iceServers: ReturnType<typeof iceServersFor> }
  >();

  private async open(
    client: ClientPeer,
    m: Extract<ClientToServer, { type: 'open' }>,
  ): Promise<void> {
    const refuse = (code: PeerwayError['code'], message: string) => {
      this.ctx.metrics.sessionsFailed.inc({ reason: code });
      client.send({ type: 'session-error', ref: m.ref, code, message });
    };
    const mine = this.sessions.of((s) => s.clientKey === client).length;
    if (mine >= this.ctx.config.limits.maxSessionsPerClient)
      return refuse('rate_limited', 'too many open sessions on this connection');
    try {
      await verifyServiceAccessToken(m.token, {
        publicKey: await this.key(),
        issuer: this.ctx.serverKeys.issuer,
        service: m.service,
      });
    } catch (err) {
      const e = err instanceof PeerwayError ? err : new PeerwayError('unauthorized', 'bad token');
      return refuse(e.code, e.message);
    }
    const service = await this.ctx.store.getService(m.service);
    if (!service) return refuse('service_unknown', `there is no service "${m.service}"`);
    const agent = await this.pickAgent(m.service, new Set(m.avoid ?? []));
    if (!agent) {
      return refuse(
        'service_offline',
        `the node serving "${m.service}" is offline; the page will connect when it is back`,
      );
    }
    const now = this.ctx.clock.now();
    const id = randomBytes(12).toString('base64url');
    const s: SessionRecord = {
      id,
      service: m.service,
      nodeId: agent.nodeId,
      shortId: agent.shortId,
      clientKey: client,
      openedAt: now,
    };
    this.sessions.add(s);
    const iceServers = iceServersFor(this.ctx.config, id, now);
    this.pendingOpen.set(id, { token: m.token, iceServers });
    this.ctx.metrics.sessionsOpened.inc();
    const minute = Math.floor(now / 60_000);
    this.perMinute.set(minute, (this.perMinute.get(minute) ?? 0) + 1);
    for (const k of this.perMinute.keys()) if (k < minute - 60) this.perMinute.delete(k);
    client.send({
      type: 'session',
      ref: m.ref,
      sessionId: id,
      iceServers,
      node: { shortId: agent.shortId, name: agent.name },
    });
  }

  /** Least-loaded online, non-draining agent that serves `service`. */
  private async pickAgent(service: string, avoid: Set<string>): Promise<AgentConnection | null> {
    const nodeIds = await this.ctx.store.listServiceNodes(service);
    const candidates = nodeIds
      .map((id) => this.ctx.agents.get(id))
      .filter(
        (a): a is AgentConnection =>
          !!a && a.accepted.has(service) && !a.draining && this.ctx.presence.isOnline(a.nodeId),
      );
    const preferred = candidates.filter((a) => !avoid.has(a.shortId));
    const pool = preferred.length > 0 ? preferred : candidates;
    const live = (a: AgentConnection) => this.sessions.of((s) => s.nodeId === a.nodeId).length;
    pool.sort(
      (a, b) =>
        (a.load?.sessions ?? live(a)) - (b.load?.sessions ?? live(b)) ||
        (a.load?.cpu ?? 0) - (b.load?.cpu ?? 0),
    );
    return pool[0] ?? null;
  }

  /** A session message from an agent. */
  fromAgent(
    agent: AgentConnection,
    m: Exclude<AgentToServer, { type: 'auth' | 'heartbeat' | 'services' | 'drain' }>,
  ): void {
    const s = this.ownSession(m.sessionId, (x) => x.nodeId === agent.nodeId);
    const client = s.clientKey as ClientPeer;
    switch (m.type) {
      case 'answer':
        if (s.answeredAt === undefined) {
          s.answeredAt = this.ctx.clock.now();
          this.ctx.metrics.setupSeconds.observe((s.answeredAt - s.openedAt) / 1000);
        }
        client.send({ type: 'answer', sessionId: s.id, sdp: m.sdp });
        return;
      case 'candidate':
        client.send({ type: 'candidate', sessionId: s.id, candidate: m.candidate });
        return;
      case 'session-reject':
        this.fail(s, m.code, m.message);
        return;
      case 'session-closed':
        this.sessions.end(s.id, this.ctx.clock.now());
        client.send({
          type: 'session-close',
          sessionId: s.id,
          reason: m.reason ?? 'the node closed the session',
        });
        return;
      case 'session-stats':
        s.agentStats = m.stats;
        return;
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { type: string }).type}`);
      }
    }
  }

  private ownSession(id: string, mine: (s: SessionRecord) => boolean): SessionRecord {
    const s = this.sessions.get(id);
    // Same answer for "no such session" and "not yours": no probing.
    if (!s || !mine(s)) throw new PeerwayError('not_found', 'no such session on this connection');
    return s;
  }

  private fail(s: SessionRecord, code: PeerwayError['code'], message: string): void {
    this.ctx.metrics.sessionsFailed.inc({ reason: code });
    this.sessions.end(s.id, this.ctx.clock.now(), code);
    this.pendingOpen.delete(s.id);
    (s.clientKey as ClientPeer).send({ type: 'session-error', sessionId: s.id, code, message });
  }

  /** An agent went away: its sessions' clients are told (their data channels may live on). */
  agentGone(agent: AgentConnection): void {
    for (const s of this.sessions.of(
      (x) => x.nodeId === agent.nodeId && x.answeredAt === undefined,
    )) {
      this.fail(s, 'service_offline', 'the node went offline before answering');
    }
  }

  /** A client went away: the agents of its unanswered sessions are told. */
  clientGone(client: ClientPeer): void {
    for (const s of this.sessions.of((x) => x.clientKey === client)) {
      this.pendingOpen.delete(s.id);
      this.sessions.end(s.id, this.ctx.clock.now());
      // Established data channels outlive signaling; only unanswered ones are cancelled.
      if (s.answeredAt === undefined)
        this.ctx.agents
          .get(s.nodeId)
          ?.peer.send({ type: 'session-close', sessionId: s.id, reason: 'the client went away' });
    }
  }
}
