/**
 * Session brokering: a client asks for a session to a service with a service
 * access token; the broker checks the token, picks the least-loaded online
 * agent serving the service, and relays offer, answer and trickled ICE
 * candidates. The broker stamps the sender itself: a peer can only signal
 * for sessions it belongs to.
 *
 * With several instances the session lives on the client's instance; when
 * the chosen agent is held by another instance, messages for it go over the
 * cluster, and that instance keeps a small relay entry so the agent's
 * answers find their way back.
 */
import { randomBytes } from 'node:crypto';
import {
  PeerwayError,
  type AgentToServer,
  type EngineName,
  type ClientToServer,
  type NodeLoad,
  type ServerToAgent,
  type ServerToClient,
  type ServiceAnnouncement,
} from '@peerway/protocol';
import { Access, declaredPrivate } from './access';
import type { AgentSessionMessage, SessionClusterMessage } from './cluster';
import type { SignalingContext } from './context';
import { iceServersFor } from './ice';
import type { Peer } from './peer';
import { leastLoaded, type Candidate } from './replicas';
import type { SessionRecord } from './sessions';
import type { ServiceRecord } from '../store/store';
import { Sessions } from './sessions';

export type ClientPeer = Peer<ClientToServer, ServerToClient>;

/** What the broker reads of an agent this instance holds (an `AgentConnection`). */
export interface LocalAgent {
  readonly nodeId: string;
  readonly shortId: string;
  readonly name: string;
  readonly draining: boolean;
  readonly load: NodeLoad | undefined;
  readonly announced: readonly ServiceAnnouncement[];
  /** Services the server accepted for routing. */
  readonly accepted: ReadonlySet<string>;
  readonly peer: { send(m: ServerToAgent): void };
}

/** A session whose client is on another instance and whose agent is here. */
interface Relay {
  nodeId: string;
  clientInstance: string;
}

/** Client candidates held for a session before its offer. */
const MAX_HELD_CANDIDATES = 32;

/** Relay entries kept at most (oldest dropped): bounds memory if ends are never heard of. */
const MAX_RELAYS = 100_000;

export class Broker {
  readonly sessions = new Sessions();
  private readonly access: Access;

  /** `agents`: the agents this instance holds, by node ID (kept by the signaling server). */
  constructor(
    private readonly ctx: SignalingContext,
    private readonly agents: ReadonlyMap<string, LocalAgent>,
  ) {
    this.access = new Access(ctx.store, ctx.serverKeys);
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
          this.toAgent(s, {
            type: 'session-close',
            sessionId: s.id,
            reason: 'the client closed the session',
          });
          return;
        }
        if (m.type === 'offer') this.offer(s, m.sdp);
        else {
          // Before the offer, the agent has no session to put it in: hold it.
          const pending = this.pendingOpen.get(s.id);
          if (pending) {
            if (pending.candidates.length >= MAX_HELD_CANDIDATES)
              throw new PeerwayError('rate_limited', 'too many candidates before the offer');
            pending.candidates.push(m.candidate);
          } else this.toAgent(s, { type: 'candidate', sessionId: s.id, candidate: m.candidate });
        }
        return;
      }
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { type: string }).type}`);
      }
    }
  }

  /** The client's offer: the agent hears of the session with it, then of the candidates held. */
  private offer(s: SessionRecord, sdp: string): void {
    const pending = this.pendingOpen.get(s.id);
    if (!pending)
      throw new PeerwayError('bad_message', 'the offer for this session was already sent');
    this.pendingOpen.delete(s.id);
    const sent = this.toAgent(s, {
      type: 'session',
      sessionId: s.id,
      service: s.service,
      token: pending.token,
      iceServers: pending.iceServers,
      offer: sdp,
      ...(pending.engine ? { engine: pending.engine } : {}),
    });
    if (!sent) this.fail(s, 'service_offline', 'the node went offline');
    for (const candidate of pending.candidates)
      this.toAgent(s, { type: 'candidate', sessionId: s.id, candidate });
  }

  private readonly pendingOpen = new Map<
    string,
    {
      token: string;
      iceServers: ReturnType<typeof iceServersFor>;
      /** Client candidates that came before the offer. */
      candidates: Extract<ClientToServer, { type: 'candidate' }>['candidate'][];
      /** The engine the client asked the node to answer with. */
      engine?: EngineName;
    }
  >();

  private async open(
    client: ClientPeer,
    m: Extract<ClientToServer, { type: 'open' }>,
  ): Promise<void> {
    const refuse = (code: PeerwayError['code'], message: string) => {
      this.ctx.metrics.sessionsFailed.inc({ reason: code });
      this.ctx.metrics.perMinute.failures.add();
      client.send({ type: 'session-error', ref: m.ref, code, message });
    };
    const mine = this.sessions.of((s) => s.clientKey === client).length;
    if (mine >= this.ctx.config.limits.maxSessionsPerClient)
      return refuse('rate_limited', 'too many open sessions on this connection');
    let subject: string;
    let access: 'public' | 'private';
    try {
      ({ subject, access } = await this.access.token(m.token, m.service));
    } catch (err) {
      const e = err instanceof PeerwayError ? err : new PeerwayError('unauthorized', 'bad token');
      return refuse(e.code, e.message);
    }
    const service = await this.ctx.store.getService(m.service);
    if (!service) return refuse('service_unknown', `there is no service "${m.service}"`);
    // A token outlives a change of access by its few minutes: the right is
    // checked again here, against what the store says now.
    const denied = await this.access.denial(service, subject);
    if (denied) return refuse(denied.code, denied.message);
    const agent = await this.pickAgent(service, new Set(m.avoid ?? []), access === 'public');
    if (!agent && access === 'public' && (await this.pickAgent(service, new Set())))
      return refuse(
        'unauthorized',
        `"${m.service}" is served privately by its nodes: sign in to open it`,
      );
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
      subject,
      openedAt: now,
      ...(m.engine ? { askedEngine: m.engine } : {}),
      ...(agent.instance ? { agentInstance: agent.instance } : {}),
    };
    this.sinceReport.set(agent.nodeId, (this.sinceReport.get(agent.nodeId) ?? 0) + 1);
    this.sessions.add(s);
    const iceServers = iceServersFor(this.ctx.config, id, now);
    this.pendingOpen.set(id, {
      token: m.token,
      iceServers,
      candidates: [],
      ...(m.engine ? { engine: m.engine } : {}),
    });
    this.ctx.metrics.sessionsOpened.inc();
    this.ctx.metrics.perMinute.sessions.add();
    client.send({
      type: 'session',
      ref: m.ref,
      sessionId: id,
      iceServers,
      node: { shortId: agent.shortId, name: agent.name },
    });
    // An offer that came with the request goes to the node now: a round
    // trip (session, then offer) less before the node can answer.
    if (m.offer !== undefined) this.offer(s, m.offer);
  }

  /**
   * Sessions this instance sent to a node since its last load report: load
   * arrives with heartbeats, seconds apart, and a burst of new sessions must
   * not all land on the replica that looked idle at the last one.
   */
  private readonly sinceReport = new Map<string, number>();

  /** A node reported its load (a heartbeat, here or on another instance). */
  loadReported(nodeId: string): void {
    this.sinceReport.delete(nodeId);
  }

  /**
   * The least-loaded healthy replica of `service`: online (here or on
   * another instance), not draining, not on the client's avoid list unless
   * nothing else is left.
   */
  private async pickAgent(
    svc: ServiceRecord,
    avoid: Set<string>,
    /** A token for anyone: nodes that declared the service private would refuse it. */
    publicToken = false,
  ): Promise<Candidate | null> {
    const service = svc.name;
    const nodeIds = await this.ctx.store.listServiceNodes(service);
    const candidates: Candidate[] = [];
    for (const nodeId of nodeIds) {
      if (!(await this.access.mayServe(nodeId, svc))) continue;
      const local = this.agents.get(nodeId);
      if (local && this.ctx.presence.isOnline(nodeId)) {
        if (!local.accepted.has(service) || local.draining) continue;
        if (publicToken && declaredPrivate(local.announced, service)) continue;
        const sessions =
          local.load?.sessions ?? this.sessions.of((s) => s.nodeId === nodeId).length;
        candidates.push({
          nodeId,
          shortId: local.shortId,
          name: local.name,
          instance: undefined,
          sessions: sessions + (this.sinceReport.get(nodeId) ?? 0),
          cpu: local.load?.cpu ?? 0,
        });
        continue;
      }
      const remote = this.ctx.cluster.remoteAgent(nodeId);
      if (!remote || !remote.accepted.includes(service) || remote.draining) continue;
      if (publicToken && remote.privateServices?.includes(service)) continue;
      candidates.push({
        nodeId,
        shortId: remote.shortId,
        name: remote.name,
        instance: remote.instance,
        sessions: (remote.load?.sessions ?? 0) + (this.sinceReport.get(nodeId) ?? 0),
        cpu: remote.load?.cpu ?? 0,
      });
    }
    return leastLoaded(candidates, avoid);
  }

  /**
   * The service's access, shares or serving grants changed (through the API,
   * on any instance): every live session of this instance's clients that no
   * longer has the right, on either end, is closed on both ends.
   */
  async serviceChanged(name: string): Promise<void> {
    const live = this.sessions.of((s) => s.service === name);
    if (live.length === 0) return;
    const svc = await this.ctx.store.getService(name);
    for (const s of live) {
      const denied = svc
        ? ((await this.access.denial(svc, s.subject ?? 'anonymous')) ??
          ((await this.access.mayServe(s.nodeId, svc))
            ? null
            : new PeerwayError('forbidden', `node ${s.shortId} may no longer serve "${name}"`)))
        : new PeerwayError('service_unknown', `there is no service "${name}" any more`);
      if (!denied || !this.sessions.get(s.id)) continue;
      this.ctx.log.info({ session: s.id, service: name, code: denied.code }, 'access revoked');
      this.toAgent(s, { type: 'session-close', sessionId: s.id, reason: denied.message });
      this.fail(s, denied.code, denied.message);
    }
  }

  /** Sends to the session's agent, here or through its instance. False if it is not here any more. */
  private toAgent(s: SessionRecord, msg: ServerToAgent): boolean {
    if (s.agentInstance) {
      this.ctx.cluster.send(s.agentInstance, {
        kind: 'to-agent',
        from: this.ctx.cluster.instanceId,
        nodeId: s.nodeId,
        sessionId: s.id,
        msg,
      });
      return true;
    }
    const agent = this.agents.get(s.nodeId);
    agent?.peer.send(msg);
    return agent !== undefined;
  }

  private readonly relays = new Map<string, Relay>();

  /** A message from another instance. */
  fromCluster(m: SessionClusterMessage): void {
    switch (m.kind) {
      case 'to-agent': {
        const agent = this.agents.get(m.nodeId);
        if (!agent) {
          this.ctx.cluster.send(m.from, {
            kind: 'agent-missing',
            nodeId: m.nodeId,
            sessionId: m.sessionId,
          });
          return;
        }
        if (m.msg.type === 'session') {
          this.relays.set(m.sessionId, { nodeId: m.nodeId, clientInstance: m.from });
          if (this.relays.size > MAX_RELAYS) this.relays.delete(this.relays.keys().next().value!);
        } else if (m.msg.type === 'session-close') this.relays.delete(m.sessionId);
        agent.peer.send(m.msg);
        return;
      }
      case 'from-agent': {
        const s = this.sessions.get(m.sessionId);
        if (!s || s.nodeId !== m.nodeId || !s.agentInstance) return;
        if (isAgentSessionMessage(m.msg)) this.agentSaid(s, m.msg);
        return;
      }
      case 'agent-missing': {
        const s = this.sessions.get(m.sessionId);
        if (s && s.nodeId === m.nodeId && s.agentInstance)
          this.fail(s, 'service_offline', 'the node went offline');
        return;
      }
      default: {
        const never: never = m;
        throw new PeerwayError('bad_message', `unhandled ${(never as { kind: string }).kind}`);
      }
    }
  }

  /** A session message from an agent this instance holds. */
  fromAgent(agent: Pick<LocalAgent, 'nodeId'>, m: AgentSessionMessage): void {
    const s = this.sessions.get(m.sessionId);
    if (s && s.nodeId === agent.nodeId && !s.agentInstance) return this.agentSaid(s, m);
    // The client may be on another instance.
    const relay = this.relays.get(m.sessionId);
    if (relay && relay.nodeId === agent.nodeId) {
      if (m.type === 'session-closed' || m.type === 'session-reject')
        this.relays.delete(m.sessionId);
      this.ctx.cluster.send(relay.clientInstance, {
        kind: 'from-agent',
        nodeId: agent.nodeId,
        sessionId: m.sessionId,
        msg: m,
      });
      return;
    }
    // A node goes on reporting on a session for a moment after its page has
    // gone (stats 2 and 6 s in, its close, late candidates): a normal race,
    // not worth an error (every short visit logged a warning on the node).
    // Silence for "ended", "unknown" and "not yours" alike: no probing.
    if (m.type === 'session-stats' || m.type === 'session-closed' || m.type === 'candidate') return;
    // Same answer for "no such session" and "not yours": no probing.
    throw new PeerwayError('not_found', 'no such session on this connection');
  }

  /** What the session's agent said, wherever it is connected. */
  private agentSaid(s: SessionRecord, m: AgentSessionMessage): void {
    const client = s.clientKey as ClientPeer;
    switch (m.type) {
      case 'answer':
        if (s.answeredAt === undefined) {
          s.answeredAt = this.ctx.clock.now();
          this.ctx.metrics.setupSeconds.observe((s.answeredAt - s.openedAt) / 1000);
        }
        client.send({
          type: 'answer',
          sessionId: s.id,
          sdp: m.sdp,
          ...(m.engine ? { engine: m.engine } : {}),
        });
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
    this.ctx.metrics.perMinute.failures.add();
    this.sessions.end(s.id, this.ctx.clock.now(), code);
    this.pendingOpen.delete(s.id);
    (s.clientKey as ClientPeer).send({ type: 'session-error', sessionId: s.id, code, message });
  }

  /**
   * A node's agent went away (here, or on another instance): unanswered
   * sessions fail; clients of answered ones get a hint to check their
   * tunnel now (the data channel may well live on: signaling is not on the
   * data path, but after a kill -9 it is dead, and the shell should not
   * wait for its ping timeout to find out).
   */
  nodeGone(nodeId: string): void {
    for (const s of this.sessions.of((x) => x.nodeId === nodeId)) {
      if (s.answeredAt === undefined) this.fail(s, 'service_offline', 'the node went offline');
      else (s.clientKey as ClientPeer).send({ type: 'node-offline', sessionId: s.id });
    }
    for (const [id, r] of this.relays) if (r.nodeId === nodeId) this.relays.delete(id);
    this.sinceReport.delete(nodeId);
  }

  /**
   * A node was removed by its owner: its sessions end on both ends at once
   * (the agent stops by itself too; the page must not wait for that).
   */
  nodeRemoved(nodeId: string): void {
    for (const s of this.sessions.of((x) => x.nodeId === nodeId)) {
      this.toAgent(s, { type: 'session-close', sessionId: s.id, reason: 'the node was removed' });
      this.fail(s, 'service_offline', 'the node was removed by its owner');
    }
  }

  /** A client went away: the agents of its unanswered sessions are told. */
  clientGone(client: ClientPeer): void {
    for (const s of this.sessions.of((x) => x.clientKey === client)) {
      this.pendingOpen.delete(s.id);
      this.sessions.end(s.id, this.ctx.clock.now());
      // Established data channels outlive signaling; only unanswered ones are cancelled.
      if (s.answeredAt === undefined)
        this.toAgent(s, { type: 'session-close', sessionId: s.id, reason: 'the client went away' });
    }
  }
}

function isAgentSessionMessage(m: AgentToServer): m is AgentSessionMessage {
  return (
    m.type === 'answer' ||
    m.type === 'candidate' ||
    m.type === 'session-reject' ||
    m.type === 'session-closed' ||
    m.type === 'session-stats'
  );
}
