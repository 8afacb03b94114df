/**
 * The candidate policy of a client session, beside its state machine
 * (./machine.ts). Browser-safe.
 *
 * Direct first: the client holds back its relay (TURN) candidates for a
 * moment so that, where the NATs allow a direct path, ICE finds it before a
 * relayed pair works: werift never lets a later nomination replace the
 * first, and a relayed pair through a nearby TURN server is often ready
 * first. Where no direct path exists, the relay goes out RELAY_HOLD_MS later.
 */
import { PeerwayError } from '../errors';
import type { EngineName, IceCandidate } from '../signaling-shared';

/** How long relay candidates are held back, in ms. */
export const RELAY_HOLD_MS = 1500;
/** How much longer than a UDP relay candidate a TCP relay candidate is held. */
export const TCP_RELAY_HOLD_MS = 300;
/** A session not open by then is given up (a clear error, not a hang). */
export const SESSION_TIMEOUT_MS = 15_000;
/** After gathering ends with a failed relay, how long a direct path may still take. */
export const RELAY_FAILURE_GRACE_MS = 3000;
/** With STUN/TURN configured, no server-reflexive or relay candidate by then means they are unreachable. */
export const RELAY_UNREACHABLE_MS = 5000;

/** Whether an SDP candidate line (`candidate:…` or `a=candidate:…`) is a relay candidate. */
export function isRelayCandidate(line: string): boolean {
  return / typ relay( |$)/.test(line);
}

/**
 * Whether a relay candidate reaches its TURN server over TCP or TLS: its
 * `relayProtocol` when the browser says, else the TURN URL it came from.
 */
export function relayOverTcp(relayProtocol?: string | null, url?: string | null): boolean {
  if (relayProtocol) return relayProtocol !== 'udp';
  return !!url && (/^turns:/.test(url) || /transport=tcp/i.test(url));
}

/**
 * This network reaches the relay only over TCP, and the node answered with
 * an engine that cannot take that (node-datachannel, libjuice#355): open
 * again asking for `engine`.
 */
export class NeedsEngine extends PeerwayError {
  constructor(readonly engine: EngineName) {
    super(
      'session_failed',
      `this network reaches the relay only over TCP: asking the node for its ${engine} engine`,
    );
  }
}

/** What the policy needs to know of a local candidate. */
export interface LocalCandidate {
  candidate: IceCandidate;
  /** host, srflx, prflx or relay (null: unknown). */
  type: string | null;
  /** A relay candidate that reaches its TURN server over TCP or TLS. */
  relayTcp?: boolean;
}

export interface CandidatePolicyOptions {
  /** Sends a local candidate to the node (null: the end-of-candidates mark). */
  emit(c: IceCandidate | null): void;
  /** Hold relay candidates back (direct first). Default true. */
  holdRelay?: boolean;
  /** Send the end-of-candidates mark. Default true. */
  sendEnd?: boolean;
  /** Called when a TCP relay candidate has had its time to find a UDP one beside it. */
  onTcpRelayDecided?(): void;
  /** The clock the relay hold is measured on, in ms. */
  now?(): number;
}

/**
 * Which local candidates go out, and when:
 * - none before `release()` (the node cannot place a candidate for a
 *   session it has not heard of: the offer goes first);
 * - direct ones at once; relay ones RELAY_HOLD_MS after `begin()`;
 * - a TCP relay TCP_RELAY_HOLD_MS later still, and only if no UDP relay
 *   turned up: where the UDP relay works the node must not meet the TCP one
 *   first (it answers whichever check arrives first, and werift keeps the
 *   first nomination);
 * - the end-of-candidates mark after the last held relay.
 * It also tells whether this network reaches the relay only over TCP
 * (`tcpRelayOnly`, with no server-reflexive candidate: `srflx`), which
 * decides the engine fallback.
 */
export class CandidatePolicy {
  /** A server-reflexive candidate was found. */
  srflx = false;
  /** A server-reflexive or relay candidate was found (STUN or TURN answered). */
  reflexive = false;
  /** A TCP relay had its time and no UDP relay came. */
  tcpRelayOnly = false;
  private relayUdp = false;
  private released = false;
  private readonly before: (IceCandidate | null)[] = [];
  private holdUntil = 0;
  private pending = 0;
  private endHeld = false;
  private stopped = false;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly now: () => number;

  constructor(private readonly o: CandidatePolicyOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Starts the relay hold (when the session is granted). */
  begin(): void {
    this.holdUntil = this.now() + RELAY_HOLD_MS;
  }

  /** The offer went out: candidates may follow (those found so far first, in order). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const c of this.before.splice(0)) this.trickle(c);
  }

  /** A local candidate; `sent`: someone else already sent it (it only counts). */
  add(c: LocalCandidate, sent = false): void {
    if (c.type === 'srflx') this.srflx = true;
    if (c.type === 'srflx' || c.type === 'relay') this.reflexive = true;
    if (sent || this.stopped) return;
    if (c.type !== 'relay' || this.o.holdRelay === false) return this.trickle(c.candidate);
    const tcp = !!c.relayTcp;
    if (!tcp) this.relayUdp = true;
    const wait = Math.max(0, this.holdUntil - this.now()) + (tcp ? TCP_RELAY_HOLD_MS : 0);
    this.pending++;
    this.after(wait, () => {
      this.pending--;
      if (!(tcp && this.relayUdp)) this.trickle(c.candidate);
      if (this.pending === 0 && this.endHeld) this.trickle(null);
    });
    // The engine question need not wait for the relay hold: a UDP relay,
    // when UDP works, comes well before a TCP one.
    if (tcp)
      this.after(TCP_RELAY_HOLD_MS, () => {
        this.tcpRelayOnly = !this.relayUdp;
        this.o.onTcpRelayDecided?.();
      });
  }

  /** Gathering is over: the end mark goes out after any held relay. */
  end(): void {
    if (this.o.sendEnd === false || this.stopped) return;
    if (this.pending > 0) this.endHeld = true;
    else this.trickle(null);
  }

  /** Nothing more goes out. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private after(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private trickle(c: IceCandidate | null): void {
    if (this.stopped) return;
    if (!this.released) this.before.push(c);
    else this.o.emit(c);
  }
}
