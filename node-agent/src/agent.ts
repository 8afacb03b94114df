/**
 * The node agent: keeps its server connection, verifies each session's
 * access token itself, answers the browser's WebRTC offer (the protocol's
 * Answerer over one of ./engine), and serves the tunnel from the declared
 * upstreams only.
 */
import {
  Answerer,
  PeerwayError,
  TunnelMux,
  type FrameChannel,
  type IceCandidate,
  type ServerToAgent,
  type ServiceAnnouncement,
} from '@peerway/protocol';
import {
  createClaimToken,
  importServerKey,
  verifyServiceAccessToken,
  type NodeIdentity,
  type TokenAccess,
} from '@peerway/protocol/node';
import type { CryptoKey } from 'jose';
import { TUNNEL_LABEL, type AllocationAssignment } from '@peerway/protocol';
import type { Logger } from 'pino';
import { ServerConnection } from './connection';
import { LoadMeter } from './load';
import { selectEngines, type AnswerSession, type RtcEngine } from './engine';
import { Upstream } from './upstream';
import { serviceUrl, type ServiceConfig } from './home';
import { UpstreamHealth, type UpstreamState } from './upstream-health';
import type { ConnectionEvent } from './connection-report';
import { AGENT_VERSION } from './version';

export { AGENT_VERSION };
/** Early candidates (before their session is set up): how many sessions, how many each, how long. */
const MAX_EARLY_SESSIONS = 256;
const MAX_EARLY_CANDIDATES = 64;
const EARLY_CANDIDATES_TTL_MS = 15_000;

/** Most concurrent sessions one agent serves. */
export const MAX_SESSIONS = 200;

export interface AgentOptions {
  serverUrl: string;
  identity: NodeIdentity;
  name: string;
  token?: string | undefined;
  /** The declared services (validated config; timeoutMs defaults to 30 s). */
  services: (Omit<ServiceConfig, 'timeoutMs'> & { timeoutMs?: number })[];
  log: Logger;
  onWelcome?: (m: Extract<ServerToAgent, { type: 'welcome' }>) => void;
  onServices?: (
    s: { name: string; accepted: boolean; reason?: string | undefined; url?: string | undefined }[],
  ) => void;
  onClaimed?: (owner: string) => void;
  /** The WebRTC engines, the default first (default: selectEngines(), from PEERWAY_ENGINE). */
  engines?: RtcEngine[];
  /** The owner removed this node: the agent has stopped. */
  onRemoved?: () => void;
  /** The server connection came up or went down (see ./connection-report). */
  onConnection?: (e: ConnectionEvent) => void;
  /** The server sent an error (a rejected token, a node claimed by someone else…). */
  onServerError?: (code: string, message: string) => void;
  /** An upstream was checked the first time (`first`), or stopped or started answering. */
  onUpstream?: (service: string, state: UpstreamState, first: boolean) => void;
  /** The server's whole desired set of replicas for this node (the cluster). */
  onAllocations?: (allocations: AllocationAssignment[]) => void;
  /** A job lease or cancel for this node as a worker (`run --jobs`). */
  onJobMessage?: (m: Extract<ServerToAgent, { type: 'job-lease' | 'job-cancel' }>) => void;
  /**
   * The node as a worker (`run --jobs`, see ./jobs): told of each welcome
   * and each dropped connection, given every lease and cancel. Without it
   * (and without onJobMessage) a lease is refused: the node takes no jobs.
   */
  jobs?: AgentJobs;
}

/** What the agent needs of its jobs worker (./jobs/worker.ts). */
export interface AgentJobs {
  connected(): Promise<void> | void;
  disconnected(): void;
  message(m: Extract<ServerToAgent, { type: 'job-lease' | 'job-cancel' }>): void;
  stop(): void;
}

/** A deployment this node serves: one of its replicas runs healthy here (see ./deploy). */
export interface DeployedService {
  /** The deployment's name, which is the service name. */
  name: string;
  /** The 127.0.0.1 port a healthy replica's container port is published on. */
  port: number;
  /** The spec's access is public. */
  public: boolean;
}

interface Session {
  id: string;
  service: string;
  rtc: AnswerSession;
  /** The session's steps from the offer on (answer, candidates, setup limit, stats). */
  answerer: Answerer;
  mux: TunnelMux | null;
}

export class Agent {
  readonly conn: ServerConnection;
  private readonly upstreams = new Map<string, Upstream>();
  /** Deployments served from their containers, by name (see serveDeployments). */
  private readonly deployed = new Map<string, DeployedService & { upstream: Upstream }>();
  private readonly sessions = new Map<string, Session>();
  private serverKey: { key: Promise<CryptoKey>; issuer: string } | null = null;
  private readonly load = new LoadMeter();
  private readonly engines: RtcEngine[];
  /** Answers sessions whose client did not ask for an engine. */
  private readonly engine: RtcEngine;
  private txTotal = 0;
  private rxTotal = 0;

  /** Whether each upstream answers: checked at start, on failure, and while down. */
  readonly health: UpstreamHealth;

  constructor(private readonly o: AgentOptions) {
    this.engines = o.engines?.length ? o.engines : selectEngines(undefined, o.log);
    this.engine = this.engines[0]!;
    this.health = new UpstreamHealth(o.services, {
      onChange: (name, state, first) => {
        if (!state.up)
          o.log.warn({ service: name, reason: state.reason }, 'upstream not reachable');
        else if (!first) o.log.info({ service: name }, 'upstream answers again');
        o.onUpstream?.(name, state, first);
      },
    });
    for (const s of o.services)
      this.upstreams.set(
        s.name,
        new Upstream(s.name, s.target, o.log.child({ service: s.name }), {
          publicOrigin: serviceUrl(o.serverUrl, s.name),
          headTimeoutMs: s.timeoutMs,
          onAnswered: () => this.health.answered(s.name),
          onFailed: () => this.health.failed(s.name),
        }),
      );
    this.conn = new ServerConnection({
      serverUrl: o.serverUrl,
      identity: o.identity,
      name: o.name,
      version: AGENT_VERSION,
      token: o.token,
      claimToken: () => createClaimToken(o.identity, o.name, Date.now()),
      services: () => this.announcements(),
      load: () => {
        let tx = this.txTotal;
        let rx = this.rxTotal;
        for (const s of this.sessions.values()) {
          tx += s.mux?.bytesSent ?? 0;
          rx += s.mux?.bytesReceived ?? 0;
        }
        return this.load.sample(this.sessions.size, tx, rx);
      },
      onMessage: (m) => this.onServerMessage(m),
      onRemoved: () => {
        this.stop();
        o.onRemoved?.();
      },
      onState: (s, d) => o.log.info({ state: s, detail: d }, 'server connection'),
      onEvent: (e) => {
        if (e.state === 'down') o.jobs?.disconnected();
        o.onConnection?.(e);
      },
      log: o.log.child({ module: 'connection' }),
    });
  }

  get identity(): NodeIdentity {
    return this.o.identity;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  start(): void {
    this.conn.start();
  }

  /** What the node announces: its declared services, then the deployments it serves. */
  private announcements(): ServiceAnnouncement[] {
    return [
      ...this.o.services.map((s) => ({
        name: s.name,
        public: s.public,
        ...(s.description ? { description: s.description } : {}),
      })),
      ...[...this.deployed.values()].map((d) => ({ name: d.name, public: d.public })),
    ];
  }

  /**
   * Serves exactly these deployments (each from its healthy replica's
   * 127.0.0.1 port) and announces the change. A deployment left out is
   * withdrawn: its open sessions end, so their pages reconnect to a
   * replica elsewhere. A name the owner declared as a service of its own
   * stays that service.
   */
  serveDeployments(list: readonly DeployedService[]): void {
    let changed = false;
    const wanted = new Map(
      list.filter((d) => !this.upstreams.has(d.name)).map((d) => [d.name, d] as const),
    );
    for (const [name, d] of this.deployed) {
      const w = wanted.get(name);
      if (w && w.port === d.port) {
        // the same container: only its access may have changed, sessions go on
        if (w.public !== d.public) changed = true;
        d.public = w.public;
        continue;
      }
      changed = true;
      this.deployed.delete(name);
      d.upstream.close();
      for (const s of [...this.sessions.values()])
        if (s.service === name) this.endSession(s, `this node no longer serves ${name}`, true);
    }
    for (const [name, w] of wanted) {
      if (this.deployed.has(name)) continue;
      changed = true;
      this.deployed.set(name, {
        ...w,
        upstream: new Upstream(
          name,
          `http://127.0.0.1:${w.port}`,
          this.o.log.child({ service: name }),
          {
            publicOrigin: serviceUrl(this.o.serverUrl, name),
          },
        ),
      });
    }
    if (changed) this.conn.send({ type: 'services', services: this.announcements() });
  }

  private draining = false;
  private drainWaiters: (() => void)[] = [];

  /**
   * Stops taking new sessions (the server routes them to other replicas)
   * and resolves when the open ones have ended, or after `timeoutMs`,
   * whichever comes first. Open pages then move to another replica by
   * themselves when this agent stops.
   */
  drain(timeoutMs: number): Promise<{ left: number }> {
    this.draining = true;
    this.conn.send({ type: 'drain', draining: true });
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve({ left: this.sessions.size });
      };
      const timer = setTimeout(done, timeoutMs);
      if (this.sessions.size === 0) done();
      else this.drainWaiters.push(done);
    });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  stop(): void {
    this.o.jobs?.stop();
    this.conn.stop();
    this.health.stop();
    for (const s of [...this.sessions.values()]) this.endSession(s, 'agent stopping', false);
    for (const u of this.upstreams.values()) u.close();
    for (const d of this.deployed.values()) d.upstream.close();
  }

  private onServerMessage(
    m: Exclude<ServerToAgent, { type: 'challenge' | 'heartbeat-ack' }>,
  ): void {
    switch (m.type) {
      case 'welcome':
        this.serverKey = { key: importServerKey(m.serverKey), issuer: m.tokenIssuer };
        // A reconnect while draining: the new server connection must know too.
        if (this.draining) this.conn.send({ type: 'drain', draining: true });
        this.o.onWelcome?.(m);
        this.o.onServices?.(m.services);
        void this.o.jobs?.connected();
        return;
      case 'services-ack':
        this.o.onServices?.(m.services);
        return;
      case 'claimed':
        this.o.onClaimed?.(m.owner);
        return;
      case 'session':
        // Candidates that follow the offer at once must wait for the
        // session: its token check is async (they used to be dropped, which
        // cost cone ⇄ cone its direct path in most runs).
        this.holdEarly(m.sessionId);
        this.openSession(m).catch((err: unknown) => {
          this.o.log.warn(
            { err: (err as Error).message, session: m.sessionId },
            'session setup failed',
          );
          const s = this.sessions.get(m.sessionId);
          if (s) this.endSession(s, 'setup failed', true);
        });
        return;
      case 'candidate': {
        const s = this.sessions.get(m.sessionId);
        if (!s) return this.holdEarly(m.sessionId, m.candidate);
        s.answerer.candidate(m.candidate);
        return;
      }
      case 'session-close': {
        const s = this.sessions.get(m.sessionId);
        if (s) this.endSession(s, m.reason, false);
        return;
      }
      case 'error':
        this.o.log.warn({ code: m.code }, `server: ${m.message}`);
        this.o.onServerError?.(m.code, m.message);
        return;
      case 'allocations':
        // the cluster: replicas the server wants this node to run (src/deploy/)
        this.o.onAllocations?.(m.allocations);
        return;
      case 'job-lease':
      case 'job-cancel':
        // jobs: work for this node as a worker (src/jobs/)
        if (this.o.jobs) this.o.jobs.message(m);
        else if (this.o.onJobMessage) this.o.onJobMessage(m);
        else if (m.type === 'job-lease')
          this.conn.send({
            type: 'job-failed',
            id: m.id,
            attempt: m.attempt,
            error: 'this node takes no jobs (it runs without --jobs)',
            retryable: true,
          });
        return;
      default: {
        const never: never = m;
        this.o.log.warn({ type: (never as { type: string }).type }, 'unhandled server message');
      }
    }
  }

  /** Candidates of sessions not set up yet, by session; dropped after EARLY_CANDIDATES_TTL_MS. */
  private readonly early = new Map<string, IceCandidate[]>();

  private holdEarly(sessionId: string, c?: IceCandidate): void {
    let q = this.early.get(sessionId);
    if (!q) {
      if (this.early.size >= MAX_EARLY_SESSIONS) return;
      q = [];
      this.early.set(sessionId, q);
      setTimeout(() => this.early.delete(sessionId), EARLY_CANDIDATES_TTL_MS).unref();
    }
    if (c !== undefined && q.length < MAX_EARLY_CANDIDATES) q.push(c);
  }

  private takeEarly(sessionId: string): IceCandidate[] {
    const q = this.early.get(sessionId) ?? [];
    this.early.delete(sessionId);
    return q;
  }

  private reject(sessionId: string, err: PeerwayError, level: 'info' | 'warn' = 'info'): void {
    this.early.delete(sessionId);
    this.o.log[level]({ session: sessionId, code: err.code }, `session refused: ${err.message}`);
    this.conn.send({
      type: 'session-reject',
      sessionId,
      code: err.code,
      message: err.message.slice(0, 500),
    });
  }

  private async openSession(m: Extract<ServerToAgent, { type: 'session' }>): Promise<void> {
    // The token is checked here, by the node, before anything is served.
    const deployed = this.deployed.get(m.service);
    const upstream = this.upstreams.get(m.service) ?? deployed?.upstream;
    if (!upstream)
      return this.reject(
        m.sessionId,
        new PeerwayError('service_unknown', `this node does not serve "${m.service}"`),
      );
    if (!this.serverKey)
      return this.reject(
        m.sessionId,
        new PeerwayError('unauthorized', 'the node has no server key yet'),
      );
    const received = performance.now();
    let access: TokenAccess;
    try {
      ({ access } = await verifyServiceAccessToken(m.token, {
        publicKey: await this.serverKey.key,
        issuer: this.serverKey.issuer,
        service: m.service,
      }));
    } catch (err) {
      return this.reject(
        m.sessionId,
        err instanceof PeerwayError ? err : new PeerwayError('unauthorized', 'bad token'),
      );
    }
    // What this node's owner declared wins over the server's record: a
    // server whose record says public (changed, mistaken or compromised)
    // cannot make a private service serve anyone who asks.
    const declaredPublic = deployed
      ? deployed.public
      : this.o.services.find((s) => s.name === m.service)?.public;
    if (access === 'public' && !declaredPublic)
      return this.reject(
        m.sessionId,
        new PeerwayError(
          'forbidden',
          `this node serves "${m.service}" privately; the server sent a public token: its record ` +
            `says the service is public, but the node's owner declared it private. ` +
            `Sign in with an account that has access to "${m.service}"`,
        ),
        'warn',
      );
    if (this.draining)
      return this.reject(
        m.sessionId,
        new PeerwayError('service_offline', 'this node is draining: it takes no new sessions'),
      );
    if (this.sessions.size >= MAX_SESSIONS)
      return this.reject(
        m.sessionId,
        new PeerwayError('rate_limited', 'this node is at its session limit'),
      );
    if (this.sessions.has(m.sessionId)) return;

    // The client's wish, when this node has that engine (see ./engine).
    const engine = this.engines.find((e) => e.name === m.engine) ?? this.engine;
    const rtc = engine.answerer(m.iceServers, TUNNEL_LABEL);
    const answerer = new Answerer({
      sessionId: m.sessionId,
      engine: engine.name,
      peer: rtc,
      send: (msg) => this.conn.send(msg),
      on: {
        answered: (answerMs) =>
          this.o.log.debug(
            { session: m.sessionId, checkMs: started - received, answerMs },
            'answered',
          ),
        connected: (channel) => this.serve(s, channel, upstream),
        ended: (reason, cause) => {
          if (cause)
            this.o.log.warn({ err: cause.message, session: m.sessionId }, 'session setup failed');
          this.endSession(s, reason, true);
        },
        badCandidate: (err) => this.o.log.debug({ err: err.message }, 'bad ICE candidate ignored'),
      },
    });
    const s: Session = { id: m.sessionId, service: m.service, rtc, answerer, mux: null };
    this.sessions.set(s.id, s);
    for (const c of this.takeEarly(s.id)) answerer.candidate(c);
    const started = performance.now();
    void answerer.start(m.offer);
  }

  /** The session's data channel is open: its streams go to the upstream. */
  private serve(s: Session, channel: FrameChannel, upstream: Upstream): void {
    const mux = new TunnelMux(channel, {
      role: 'server',
      onProtocolError: (id, reason) =>
        this.o.log.debug({ session: s.id, stream: id, reason }, 'tunnel protocol error'),
    });
    s.mux = mux;
    // the peer's address for X-Forwarded-For, once ICE has picked a pair
    const peer = { address: s.rtc.remoteAddress() };
    mux.onRequest((req) => {
      peer.address ??= s.rtc.remoteAddress();
      upstream
        .handleRequest(req, peer)
        .catch((err: unknown) => this.o.log.warn({ err }, 'request failed'));
    });
    mux.onWebSocket((inc) => upstream.handleWebSocket(inc, peer));
    mux.onClose(() => this.endSession(s, 'the data channel closed', true));
  }

  private endSession(s: Session, reason: string, tellServer: boolean): void {
    if (!this.sessions.delete(s.id)) return;
    s.answerer.close();
    this.txTotal += s.mux?.bytesSent ?? 0;
    this.rxTotal += s.mux?.bytesReceived ?? 0;
    s.mux?.close(reason);
    s.rtc.close();
    if (tellServer) this.conn.send({ type: 'session-closed', sessionId: s.id, reason });
    this.o.log.info({ session: s.id, reason }, 'session ended');
    if (this.sessions.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }
}
