/**
 * The client side of a session's signaling, written once for the browser
 * shell and the Node tunnel client: an explicit state machine driven by
 * events (the server's messages, the peer connection's), behind a small
 * peer adapter. Browser-safe: no DOM or Node imports.
 *
 * ```
 * idle ─open─▶ requesting ─session─▶ offering ─offer out─▶ answering ─answer─▶ connecting ─channel open─▶ connected
 *   every state before connected ─error, timeout, ICE failed─▶ failed;  any ─close()─▶ closed
 * ```
 */
import { PeerwayError } from '../errors';
import type { ClientToServer, ServerToClient } from '../signaling-client';
import type { EngineName, IceCandidate, IceServer } from '../signaling-shared';
import {
  CandidatePolicy,
  NeedsEngine,
  RELAY_FAILURE_GRACE_MS,
  RELAY_UNREACHABLE_MS,
  type LocalCandidate,
} from './policy';

export type SessionState =
  | 'idle'
  | 'requesting'
  | 'offering'
  | 'answering'
  | 'connecting'
  | 'connected'
  | 'failed'
  | 'closed';

const ORDER: readonly SessionState[] = [
  'idle',
  'requesting',
  'offering',
  'answering',
  'connecting',
  'connected',
];

/** What the state machine asks of a peer connection. */
export interface SessionPeer {
  /**
   * Makes the offer and resolves its SDP: before the request when the offer
   * goes with it (`offerWithOpen`), else once the session is granted, with
   * its ICE servers.
   */
  createOffer(iceServers?: IceServer[]): Promise<string>;
  /**
   * Applies the session's ICE servers and the offer as the local description
   * (gathering starts); resolves the SDP for an `offer` message, or null when
   * the offer went out already.
   */
  setLocal(iceServers: IceServer[]): Promise<string | null>;
  applyAnswer(sdp: string): Promise<void>;
  /** A remote candidate (null: the node's end of candidates). */
  addCandidate(c: IceCandidate | null): Promise<void>;
  /** The peer connection is connected (a path works). */
  connected(): boolean;
  /** ICE is connected or completed. */
  iceConnected(): boolean;
}

export interface StateTimeout {
  ms: number;
  message: string;
}

export interface SessionEvents {
  state?(s: SessionState): void;
  /** The session was granted (before the offer is applied). */
  session?(m: Extract<ServerToClient, { type: 'session' }>): void;
  /** The offer went out (in the request or as its own message). */
  offerSent?(): void;
  /** The node's answer arrived (before it is applied). */
  answer?(): void;
  /** The node's answer is applied: ICE and DTLS run from here. */
  answered?(): void;
  connected?(s: ConnectedSession): void;
  failed?(err: PeerwayError): void;
  /** After connected: the server ended the session. */
  ended?(message: string): void;
  /** After connected: the server saw the node's signaling drop. */
  nodeOffline?(): void;
}

export interface ConnectedSession {
  sessionId: string;
  node: { shortId: string; name: string };
  /** The engine the node answered with, when it said. */
  engine: EngineName | undefined;
}

export interface ClientSessionOptions {
  service: string;
  token: string;
  avoid?: string[];
  /** Ask the node to answer with this engine. */
  engine?: EngineName;
  ref?: string;
  send(m: ClientToServer): void;
  peer: SessionPeer;
  /** The offer is made first and goes with the request (`open`). */
  offerWithOpen?: boolean;
  /** Hold relay candidates back and send the end-of-candidates mark (direct first). Default true. */
  holdRelay?: boolean;
  /** Give up early when STUN/TURN are unreachable or the relay fails. */
  watchRelay?: boolean;
  /** Fail with NeedsEngine('werift') when the relay is reachable only over TCP and the node answered with node-datachannel. */
  engineFallback?: boolean;
  /** A limit for the whole setup, from start() to connected. */
  timeout?: StateTimeout;
  /** A limit for the time spent in one state. */
  stateTimeouts?: Partial<Record<SessionState, StateTimeout>>;
  on?: SessionEvents;
  /** The clock of the relay hold. */
  now?(): number;
}

/** The request went out already (an adopted early start): how. */
export interface AdoptedRequest {
  offerInOpen: boolean;
}

export class ClientSession {
  state: SessionState = 'idle';
  readonly ref: string;
  sessionId = '';
  node: { shortId: string; name: string } | undefined;
  /** The engine the node answered with, when it said. */
  answerEngine: EngineName | undefined;
  readonly candidates: CandidatePolicy;
  private offerInOpen = false;
  private offer: Promise<string> | undefined;
  private answerSeen = false;
  private channelOpened = false;
  private relayError = '';
  private totalTimer: ReturnType<typeof setTimeout> | undefined;
  private stateTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly on: SessionEvents;

  constructor(private readonly o: ClientSessionOptions) {
    this.ref = o.ref ?? Math.random().toString(36).slice(2);
    this.on = o.on ?? {};
    const hold = o.holdRelay !== false;
    this.candidates = new CandidatePolicy({
      emit: (candidate) =>
        this.live && o.send({ type: 'candidate', sessionId: this.sessionId, candidate }),
      holdRelay: hold,
      sendEnd: hold,
      onTcpRelayDecided: () => this.checkEngine(),
      ...(o.now ? { now: o.now } : {}),
    });
  }

  /** Not failed or closed. */
  get live(): boolean {
    return this.state !== 'failed' && this.state !== 'closed';
  }

  /**
   * Asks for the session (`open`, with the offer when `offerWithOpen`), or,
   * given `adopted`, takes over a request that went out already.
   */
  start(adopted?: AdoptedRequest): void {
    if (this.state !== 'idle') return;
    if (this.o.timeout) {
      const { ms, message } = this.o.timeout;
      this.totalTimer = setTimeout(
        () => this.fail(new PeerwayError('session_failed', message)),
        ms,
      );
    }
    if (adopted) {
      this.offerInOpen = adopted.offerInOpen;
      return this.enter('requesting');
    }
    if (!this.o.offerWithOpen) {
      this.enter('requesting');
      return this.sendOpen();
    }
    // The offer goes with the request (the node can answer at once); one
    // that could not be made is reported once the session is granted.
    this.offer = this.o.peer.createOffer();
    this.offer.then(
      (sdp) => this.live && (this.enter('requesting'), this.sendOpen(sdp)),
      () => this.live && (this.enter('requesting'), this.sendOpen()),
    );
  }

  /** A message from the server. */
  receive(m: ServerToClient): void {
    if (!this.live) return;
    switch (m.type) {
      case 'session':
        if (m.ref === this.ref && this.state === 'requesting') void this.granted(m);
        return;
      case 'session-error':
        if (m.ref === this.ref || (!!this.sessionId && m.sessionId === this.sessionId)) {
          if (this.state === 'connected') this.on.ended?.(m.message);
          else this.fail(new PeerwayError(m.code, m.message));
        }
        return;
      case 'error':
        // Before the session, the request is all this connection said: an
        // error now is its refusal (say so now, not at the timeout).
        if (!this.sessionId) this.fail(new PeerwayError(m.code, m.message));
        return;
      case 'answer':
        if (this.sessionId && m.sessionId === this.sessionId && !this.answerSeen)
          void this.answered(m.sdp, m.engine);
        return;
      case 'candidate':
        if (this.sessionId && m.sessionId === this.sessionId)
          void this.o.peer.addCandidate(m.candidate).catch(() => {});
        return;
      case 'node-offline':
        if (this.state === 'connected' && m.sessionId === this.sessionId) this.on.nodeOffline?.();
        return;
      case 'session-close':
      case 'pong':
        return;
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  /** A local candidate; `sent`: it went out already (it only counts). */
  candidate(c: LocalCandidate, sent = false): void {
    if (this.live) this.candidates.add(c, sent);
  }

  /** Local gathering found its last candidate. */
  candidatesEnd(): void {
    if (this.live) this.candidates.end();
  }

  /** A STUN/TURN server failed (`icecandidateerror`). */
  candidateError(url: string, errorCode: number): void {
    if (/^turns?:/.test(url))
      this.relayError = errorCode === 401 ? 'refused our credentials' : 'is unreachable';
  }

  /**
   * Gathering is complete: with a failed relay and no path shortly after,
   * say so instead of waiting out ICE.
   */
  gatheringComplete(): void {
    if (!this.o.watchRelay || !this.relayError || !this.live) return;
    const why = this.relayError;
    this.after(RELAY_FAILURE_GRACE_MS, () => {
      if (!this.o.peer.connected())
        this.fail(
          new PeerwayError(
            'session_failed',
            `No direct path to the node, and the relay (TURN) ${why}. Ask the server's admin to check TURN.`,
          ),
        );
    });
  }

  /** The data channel opened. */
  channelOpen(): void {
    if (!this.live || this.state === 'connected') return;
    this.channelOpened = true;
    if (!this.node) return; // connects once the session is known
    this.enter('connected');
    this.clearTimers();
    this.on.connected?.({
      sessionId: this.sessionId,
      node: this.node,
      engine: this.answerEngine,
    });
  }

  /** The peer connection failed before the channel opened. */
  peerFailed(message: string): void {
    this.fail(new PeerwayError('session_failed', message));
  }

  /** Ends the session here (no message: the caller closes what it owns). */
  close(): void {
    if (!this.live) return;
    this.clearTimers();
    this.candidates.stop();
    this.state = 'closed';
    this.on.state?.('closed');
  }

  private sendOpen(sdp?: string): void {
    const o = this.o;
    o.send({
      type: 'open',
      ref: this.ref,
      service: o.service,
      token: o.token,
      ...(o.avoid?.length ? { avoid: o.avoid } : {}),
      ...(sdp !== undefined ? { offer: sdp } : {}),
      ...(o.engine ? { engine: o.engine } : {}),
    });
    this.offerInOpen = sdp !== undefined;
    if (this.offerInOpen) this.on.offerSent?.();
  }

  private async granted(m: Extract<ServerToClient, { type: 'session' }>): Promise<void> {
    this.sessionId = m.sessionId;
    this.node = m.node;
    this.enter('offering');
    this.on.session?.(m);
    this.candidates.begin();
    // Nothing but host candidates a few seconds in, on a page that was given
    // STUN/TURN servers, means those servers are unreachable.
    if (this.o.watchRelay && m.iceServers.length > 0)
      this.after(RELAY_UNREACHABLE_MS, () => {
        if (!this.candidates.reflexive && !this.o.peer.connected())
          this.fail(
            new PeerwayError(
              'session_failed',
              "No direct path to the node, and the relay (TURN) is unreachable. Ask the server's admin to check TURN.",
            ),
          );
      });
    if (this.channelOpened) this.channelOpen();
    try {
      if (!this.offer) this.offer = this.o.peer.createOffer(m.iceServers);
      await this.offer;
      const sdp = await this.o.peer.setLocal(m.iceServers);
      if (!this.live) return;
      if (sdp !== null && !this.offerInOpen) {
        this.o.send({ type: 'offer', sessionId: this.sessionId, sdp });
        this.on.offerSent?.();
      }
      this.candidates.release();
      if (this.state === 'offering') this.enter('answering');
    } catch (err) {
      this.fail(asSessionError(err));
    }
  }

  private async answered(sdp: string, engine: EngineName | undefined): Promise<void> {
    this.answerSeen = true;
    this.answerEngine = engine;
    this.on.answer?.();
    try {
      await this.o.peer.applyAnswer(sdp);
    } catch (err) {
      return this.fail(asSessionError(err));
    }
    if (!this.live) return;
    if (this.state === 'offering' || this.state === 'answering') this.enter('connecting');
    this.on.answered?.();
    this.checkEngine();
  }

  /** Nothing but a relay over TCP, and the node's engine cannot take that: ask again for one that can, now rather than after ICE gives up. */
  private checkEngine(): void {
    if (!this.o.engineFallback || !this.answerSeen) return;
    const c = this.candidates;
    if (!c.tcpRelayOnly || c.srflx || this.o.engine || this.answerEngine !== 'node-datachannel')
      return;
    if (this.o.peer.iceConnected()) return;
    this.fail(new NeedsEngine('werift'));
  }

  private fail(err: PeerwayError): void {
    if (!this.live || this.state === 'connected') return;
    this.clearTimers();
    this.candidates.stop();
    this.state = 'failed';
    this.on.state?.('failed');
    this.on.failed?.(err);
  }

  /** Moves forward only (an early start may deliver steps out of order). */
  private enter(s: SessionState): void {
    if (ORDER.indexOf(s) <= ORDER.indexOf(this.state)) return;
    this.state = s;
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.stateTimer = undefined;
    const limit = this.o.stateTimeouts?.[s];
    if (limit)
      this.stateTimer = setTimeout(
        () => this.fail(new PeerwayError('session_failed', limit.message)),
        limit.ms,
      );
    this.on.state?.(s);
  }

  private after(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private clearTimers(): void {
    clearTimeout(this.totalTimer);
    clearTimeout(this.stateTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function asSessionError(err: unknown): PeerwayError {
  return err instanceof PeerwayError
    ? err
    : new PeerwayError('session_failed', (err as Error)?.message ?? String(err));
}
