/**
 * The node's side of a session, the answerer, beside the client's
 * (./machine.ts): an explicit state machine behind a small peer adapter
 * that each of the agent's engines implements. The agent decides whether
 * to answer at all (the token, the service, its limits); from the offer on,
 * this is what happens. Browser-safe: no DOM or Node imports.
 *
 * ```
 * idle ─start(offer)─▶ answering ─answer out─▶ answered ─channel open─▶ connected ─peer ended─▶ closed
 *   before connected ─offer refused, ANSWER_TIMEOUT_MS, peer failed or closed─▶ failed;  any ─close()─▶ closed
 * ```
 *
 * Candidates: the client's are queued until the offer is applied (also
 * those that came before the session, passed in before `start`), then added
 * all at once, not one after another (werift resolves an mDNS host
 * candidate for up to 10 s, and the answer must not wait for that). The
 * node's own go out after the answer, through the client's candidate
 * policy: direct ones at once, relay ones RELAY_HOLD_MS after the answer
 * (direct first). The node sends no end-of-candidates mark, and its relay
 * candidates are never TCP ones (werift uses the first `turn:` URL, the UDP
 * one; node-datachannel has no TURN over TCP), so the TCP-relay decision
 * and the engine fallback are the client's alone.
 */
import type { ConnectionStats, EngineName, IceCandidate } from '../signaling-shared';
import type { AgentToServer } from '../signaling-agent';
import type { FrameChannel } from '../tunnel/channel';
import { CandidatePolicy, isRelayCandidate } from './policy';
import { scheduleStats } from './stats';

export type AnswerState = 'idle' | 'answering' | 'answered' | 'connected' | 'failed' | 'closed';

/** A session whose data channel is not open by then is dropped, in ms. */
export const ANSWER_TIMEOUT_MS = 30_000;

/** What the answering state machine asks of an engine's peer connection. */
export interface AnswerPeer {
  /** Applies the offer and resolves with the answer SDP (candidates trickle through onCandidate). */
  answer(offerSdp: string): Promise<string>;
  /** A remote candidate (null: the client's end of candidates; an engine may skip it). */
  addRemoteCandidate(c: IceCandidate): Promise<void>;
  /** A local candidate (its a=candidate line and mid). */
  onCandidate(cb: (c: { candidate: string; sdpMid: string | null }) => void): void;
  /** The tunnel's data channel, open. */
  onChannel(cb: (ch: FrameChannel) => void): void;
  /** The peer connection failed or closed for good. */
  onEnd(cb: (state: 'failed' | 'closed') => void): void;
  /** How the connection was made (null: not known yet). */
  stats(): Promise<ConnectionStats | null>;
}

/** The messages the answerer sends to the server. */
export type AnswererMessage = Extract<
  AgentToServer,
  { type: 'answer' | 'candidate' | 'session-stats' }
>;

export interface AnswererEvents {
  state?(s: AnswerState): void;
  /** The answer went out, `ms` after start(). */
  answered?(ms: number): void;
  /** The data channel opened, `setupMs` after start(). */
  connected?(channel: FrameChannel, setupMs: number): void;
  /**
   * The session ended by itself (not by close()), with why in words; `cause`
   * when the offer could not be answered.
   */
  ended?(reason: string, cause?: Error): void;
  /** A remote candidate the engine refused (it is skipped; the session goes on). */
  badCandidate?(err: Error): void;
}

export interface AnswererOptions {
  sessionId: string;
  /** The engine that answers: named in the answer and the stats. */
  engine: EngineName;
  peer: AnswerPeer;
  send(m: AnswererMessage): void;
  on?: AnswererEvents;
  /** Setup limit, start() to channel open (default ANSWER_TIMEOUT_MS). */
  timeoutMs?: number;
  /** When the stats go again after the first report (default STATS_REPORT_DELAYS_MS). */
  statsDelaysMs?: readonly number[];
  /** The clock of the relay hold and the timings, in ms. */
  now?(): number;
}

export class Answerer {
  state: AnswerState = 'idle';
  private readonly on: AnswererEvents;
  private readonly now: () => number;
  private readonly policy: CandidatePolicy;
  /** The client's candidates until the offer is applied. */
  private readonly remote: IceCandidate[] = [];
  /** The node's candidates found before the answer went out. */
  private readonly local: IceCandidate[] = [];
  private startedAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopStats: (() => void) | undefined;

  constructor(private readonly o: AnswererOptions) {
    this.on = o.on ?? {};
    this.now = o.now ?? (() => performance.now());
    this.policy = new CandidatePolicy({
      emit: (candidate) =>
        this.live && o.send({ type: 'candidate', sessionId: o.sessionId, candidate }),
      holdRelay: true,
      sendEnd: false,
      now: this.now,
    });
    o.peer.onCandidate((c) => this.localCandidate(c));
    o.peer.onChannel((ch) => this.channelOpen(ch));
    o.peer.onEnd((s) => this.end(`peer connection ${s}`));
  }

  /** Not failed or closed. */
  get live(): boolean {
    return this.state !== 'failed' && this.state !== 'closed';
  }

  /** A candidate from the client (queued until the offer is applied). */
  candidate(c: IceCandidate): void {
    if (!this.live) return;
    if (this.state === 'idle' || this.state === 'answering') this.remote.push(c);
    else this.addRemote(c);
  }

  /** Applies the client's offer and sends the answer; the setup limit starts now. */
  async start(offerSdp: string): Promise<void> {
    if (this.state !== 'idle') return;
    this.startedAt = this.now();
    this.timer = setTimeout(
      () => this.end('the data channel did not open in time'),
      this.o.timeoutMs ?? ANSWER_TIMEOUT_MS,
    );
    this.enter('answering');
    let sdp: string;
    try {
      sdp = await this.o.peer.answer(offerSdp);
    } catch (err) {
      return this.end('setup failed', err instanceof Error ? err : new Error(String(err)));
    }
    // closed, or failed by the setup limit, while the engine answered
    if ((this.state as AnswerState) !== 'answering') return;
    this.enter('answered');
    for (const c of this.remote.splice(0)) this.addRemote(c);
    this.o.send({ type: 'answer', sessionId: this.o.sessionId, sdp, engine: this.o.engine });
    this.on.answered?.(this.now() - this.startedAt);
    // The relay hold is measured from the answer; what was found before it follows it.
    this.policy.begin();
    this.policy.release();
    for (const c of this.local.splice(0)) this.policy.add(localCandidate(c));
  }

  /** Ends the session here (no message: the caller closes the peer connection and says why). */
  close(): void {
    if (!this.live) return;
    this.stop();
    this.enter('closed');
  }

  private localCandidate(c: { candidate: string; sdpMid: string | null }): void {
    if (!this.live) return;
    const candidate: IceCandidate = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: 0 };
    if (this.state === 'idle' || this.state === 'answering') this.local.push(candidate);
    else this.policy.add(localCandidate(candidate));
  }

  private addRemote(c: IceCandidate): void {
    this.o.peer.addRemoteCandidate(c).catch((err: unknown) => {
      this.on.badCandidate?.(err instanceof Error ? err : new Error(String(err)));
    });
  }

  private channelOpen(channel: FrameChannel): void {
    if (this.state !== 'answering' && this.state !== 'answered') return;
    clearTimeout(this.timer);
    this.enter('connected');
    const setupMs = this.now() - this.startedAt;
    this.on.connected?.(channel, setupMs);
    if (!this.live) return;
    const report = () =>
      void this.o.peer.stats().then(
        (stats) =>
          stats &&
          this.live &&
          this.o.send({
            type: 'session-stats',
            sessionId: this.o.sessionId,
            stats: { ...stats, setupMs, engine: this.o.engine },
          }),
        () => {},
      );
    this.stopStats = scheduleStats(report, this.o.statsDelaysMs);
  }

  private end(reason: string, cause?: Error): void {
    if (!this.live) return;
    const wasConnected = this.state === 'connected';
    this.stop();
    this.enter(wasConnected ? 'closed' : 'failed');
    this.on.ended?.(reason, cause);
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.stopStats?.();
    this.policy.stop();
  }

  private enter(s: AnswerState): void {
    this.state = s;
    this.on.state?.(s);
  }
}

/** A node's candidate as the policy sees it (only relay or not matters on this side). */
function localCandidate(candidate: IceCandidate): {
  candidate: IceCandidate;
  type: string | null;
} {
  const line = candidate?.candidate ?? '';
  return {
    candidate,
    type: isRelayCandidate(line) ? 'relay' : (/ typ (\w+)/.exec(line)?.[1] ?? null),
  };
}
