import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ANSWER_TIMEOUT_MS,
  Answerer,
  type AnswerPeer,
  type AnswerState,
  type AnswererMessage,
  type AnswererOptions,
} from './answerer';
import { RELAY_HOLD_MS } from './policy';
import { AgentToServerSchema } from '../signaling-agent';
import { STATS_REPORT_DELAYS_MS } from '../tunnel/wire';
import type { ConnectionStats, IceCandidate } from '../signaling-shared';
import type { FrameChannel } from '../tunnel/channel';

const HOST = 'candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host';
const SRFLX = 'candidate:2 1 udp 1686052607 198.51.100.7 50001 typ srflx raddr 0.0.0.0 rport 0';
const RELAY = 'candidate:3 1 udp 41885439 203.0.113.10 50002 typ relay raddr 0.0.0.0 rport 0';
const STATS: ConnectionStats = {
  localCandidateType: 'host',
  remoteCandidateType: 'prflx',
  protocol: 'udp',
};
const CHANNEL = {} as FrameChannel;

/** An engine's peer connection that does what the test says, and records what it was asked. */
class FakePeer implements AnswerPeer {
  calls: string[] = [];
  statsCalls = 0;
  /** Settles the pending answer(). */
  resolveAnswer: (sdp: string) => void = () => {};
  rejectAnswer: (err: Error) => void = () => {};
  candidateError: Error | null = null;
  private candidateCb: (c: { candidate: string; sdpMid: string | null }) => void = () => {};
  private channelCb: (ch: FrameChannel) => void = () => {};
  private endCb: (s: 'failed' | 'closed') => void = () => {};
  answer(offer: string): Promise<string> {
    this.calls.push(`answer(${offer})`);
    return new Promise((resolve, reject) => {
      this.resolveAnswer = resolve;
      this.rejectAnswer = reject;
    });
  }
  addRemoteCandidate(c: IceCandidate): Promise<void> {
    this.calls.push(`candidate(${c ? c.candidate : 'end'})`);
    return this.candidateError ? Promise.reject(this.candidateError) : Promise.resolve();
  }
  onCandidate(cb: (c: { candidate: string; sdpMid: string | null }) => void): void {
    this.candidateCb = cb;
  }
  onChannel(cb: (ch: FrameChannel) => void): void {
    this.channelCb = cb;
  }
  onEnd(cb: (s: 'failed' | 'closed') => void): void {
    this.endCb = cb;
  }
  stats(): Promise<ConnectionStats | null> {
    this.statsCalls++;
    return Promise.resolve(STATS);
  }
  found(candidate: string): void {
    this.candidateCb({ candidate, sdpMid: '0' });
  }
  open(): void {
    this.channelCb(CHANNEL);
  }
  ended(s: 'failed' | 'closed'): void {
    this.endCb(s);
  }
}

describe('answering state machine', () => {
  let peer: FakePeer;
  let sent: AnswererMessage[];
  let states: AnswerState[];
  let ended: { reason: string; cause?: Error | undefined }[];
  let connected: number[];
  let bad: Error[];

  const make = (o: Partial<AnswererOptions> = {}): Answerer =>
    new Answerer({
      sessionId: 's1',
      engine: 'node-datachannel',
      peer,
      send: (m) => {
        // every message is one the server accepts from an agent
        expect(AgentToServerSchema.safeParse(m).success).toBe(true);
        sent.push(m);
      },
      now: () => Date.now(),
      on: {
        state: (s) => states.push(s),
        ended: (reason, cause) => ended.push({ reason, cause }),
        connected: (_ch, ms) => connected.push(ms),
        badCandidate: (e) => bad.push(e),
      },
      ...o,
    });
  const candidatesSent = () =>
    sent.flatMap((m) => (m.type === 'candidate' ? [m.candidate?.candidate ?? 'end'] : []));
  /** Lets the answer's promise chain run (no timers). */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };

  beforeEach(() => {
    vi.useFakeTimers();
    peer = new FakePeer();
    sent = [];
    states = [];
    ended = [];
    connected = [];
    bad = [];
  });
  afterEach(() => vi.useRealTimers());

  it('answers the offer, then opens: idle → answering → answered → connected', async () => {
    const a = make();
    expect(a.state).toBe('idle');
    void a.start('offer-sdp');
    expect(a.state).toBe('answering');
    expect(peer.calls).toEqual(['answer(offer-sdp)']);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(40);
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(a.state).toBe('answered');
    expect(sent).toEqual([
      { type: 'answer', sessionId: 's1', sdp: 'answer-sdp', engine: 'node-datachannel' },
    ]);
    vi.advanceTimersByTime(60);
    peer.open();
    expect(states).toEqual(['answering', 'answered', 'connected']);
    expect(connected).toEqual([100]);
    expect(ended).toEqual([]);
  });

  it("queues the client's candidates until the offer is applied, then adds them all, early ones first", async () => {
    const a = make();
    a.candidate({ candidate: 'early', sdpMid: '0' }); // came before the session was set up
    void a.start('offer-sdp');
    a.candidate({ candidate: 'c1', sdpMid: '0' });
    a.candidate(null);
    expect(peer.calls).toEqual(['answer(offer-sdp)']);
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(peer.calls).toEqual([
      'answer(offer-sdp)',
      'candidate(early)',
      'candidate(c1)',
      'candidate(end)',
    ]);
    a.candidate({ candidate: 'c2', sdpMid: '0' });
    expect(peer.calls.at(-1)).toBe('candidate(c2)');
  });

  it('all queued candidates are added before the answer goes out, and none waits for another', async () => {
    // an engine that resolves a candidate slowly (werift and an mDNS name) must not hold up the others or the answer
    const order: string[] = [];
    peer.addRemoteCandidate = (c) => {
      order.push(`add(${c?.candidate})`);
      return new Promise(() => {}); // never settles
    };
    const a = make({ send: (m) => (order.push(m.type), sent.push(m)) });
    a.candidate({ candidate: 'a.local', sdpMid: '0' });
    a.candidate({ candidate: 'b', sdpMid: '0' });
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(order).toEqual(['add(a.local)', 'add(b)', 'answer']);
  });

  it('a candidate the engine refuses is reported and skipped; the session goes on', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    peer.candidateError = new Error('bad candidate');
    a.candidate({ candidate: 'garbage', sdpMid: '0' });
    await settle();
    expect(bad.map((e) => e.message)).toEqual(['bad candidate']);
    expect(a.state).toBe('answered');
  });

  it("sends none of the node's candidates before the answer; direct ones follow it at once", async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.found(HOST);
    peer.found(SRFLX);
    expect(sent).toEqual([]);
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(sent[0]?.type).toBe('answer');
    expect(candidatesSent()).toEqual([HOST, SRFLX]);
    expect(sent[1]).toEqual({
      type: 'candidate',
      sessionId: 's1',
      candidate: { candidate: HOST, sdpMid: '0', sdpMLineIndex: 0 },
    });
  });

  it('holds relay candidates until RELAY_HOLD_MS after the answer (direct first), also those found before it', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.found(RELAY); // before the answer
    vi.advanceTimersByTime(1000);
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(candidatesSent()).toEqual([]);
    vi.advanceTimersByTime(500);
    peer.found(HOST);
    peer.found(`${RELAY} generation 1`); // after the answer
    expect(candidatesSent()).toEqual([HOST]);
    vi.advanceTimersByTime(RELAY_HOLD_MS - 500 - 1);
    expect(candidatesSent()).toEqual([HOST]);
    vi.advanceTimersByTime(1);
    expect(candidatesSent()).toEqual([HOST, RELAY, `${RELAY} generation 1`]);
    // a relay found after the hold goes at once
    vi.advanceTimersByTime(5000);
    peer.found(`${RELAY} generation 2`);
    await vi.advanceTimersByTimeAsync(0);
    expect(candidatesSent().at(-1)).toBe(`${RELAY} generation 2`);
    expect(a.state).toBe('answered');
  });

  it('never sends an end-of-candidates mark', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.found(RELAY);
    peer.resolveAnswer('answer-sdp');
    await settle();
    await vi.advanceTimersByTimeAsync(RELAY_HOLD_MS * 4);
    expect(candidatesSent()).toEqual([RELAY]);
    expect(a.state).toBe('answered');
  });

  it('gives up when the data channel is not open ANSWER_TIMEOUT_MS after the offer came', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    vi.advanceTimersByTime(ANSWER_TIMEOUT_MS - 1);
    expect(a.state).toBe('answered');
    vi.advanceTimersByTime(1);
    expect(a.state).toBe('failed');
    expect(ended).toEqual([{ reason: 'the data channel did not open in time', cause: undefined }]);
    // nothing more goes out, and a late channel is not taken
    peer.found(HOST);
    peer.open();
    expect(candidatesSent()).toEqual([]);
    expect(connected).toEqual([]);
  });

  it('the timeout also covers an engine that never answers', () => {
    const a = make({ timeoutMs: 500 });
    void a.start('offer-sdp');
    vi.advanceTimersByTime(500);
    expect(a.state).toBe('failed');
    expect(ended[0]?.reason).toBe('the data channel did not open in time');
    peer.resolveAnswer('late-sdp');
    return settle().then(() => expect(sent).toEqual([]));
  });

  it('an open channel stops the timeout', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    peer.open();
    vi.advanceTimersByTime(ANSWER_TIMEOUT_MS * 2);
    expect(a.state).toBe('connected');
    expect(ended).toEqual([]);
  });

  it('an offer the engine cannot answer fails the session with its cause, and no answer goes out', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.rejectAnswer(new Error('bad offer'));
    await settle();
    expect(a.state).toBe('failed');
    expect(ended.map((e) => [e.reason, e.cause?.message])).toEqual([['setup failed', 'bad offer']]);
    expect(sent).toEqual([]);
  });

  it('a peer connection that fails before the channel opens fails the session; after, it closes it', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    peer.ended('failed');
    expect(a.state).toBe('failed');
    expect(ended.map((e) => e.reason)).toEqual(['peer connection failed']);

    peer = new FakePeer();
    ended = [];
    const b = make();
    void b.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    peer.open();
    peer.ended('closed');
    expect(b.state).toBe('closed');
    expect(ended.map((e) => e.reason)).toEqual(['peer connection closed']);
    peer.ended('failed'); // once only
    expect(ended).toHaveLength(1);
  });

  it('reports the stats when the channel opens and again on the shared schedule, with setup time and engine', async () => {
    const a = make({ engine: 'werift' });
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    vi.advanceTimersByTime(25);
    peer.open();
    await settle();
    const stats = () => sent.filter((m) => m.type === 'session-stats');
    expect(stats()).toEqual([
      {
        type: 'session-stats',
        sessionId: 's1',
        stats: { ...STATS, setupMs: 25, engine: 'werift' },
      },
    ]);
    // each delay counts from the open
    await vi.advanceTimersByTimeAsync(Math.max(...STATS_REPORT_DELAYS_MS) - 1);
    expect(stats()).toHaveLength(STATS_REPORT_DELAYS_MS.length);
    await vi.advanceTimersByTimeAsync(1);
    expect(peer.statsCalls).toBe(1 + STATS_REPORT_DELAYS_MS.length);
    expect(stats()).toHaveLength(1 + STATS_REPORT_DELAYS_MS.length);
    expect(a.state).toBe('connected');
  });

  it('close() stops everything: no held relay, no stats, no answer, no event', async () => {
    const a = make();
    void a.start('offer-sdp');
    peer.resolveAnswer('answer-sdp');
    await settle();
    peer.found(RELAY);
    peer.open();
    await settle();
    const before = sent.length;
    a.close();
    expect(a.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(before);
    expect(peer.statsCalls).toBe(1);
    expect(ended).toEqual([]);

    peer = new FakePeer();
    sent = [];
    const b = make();
    void b.start('offer-sdp');
    b.close();
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(sent).toEqual([]);
    expect(b.state).toBe('closed');
  });

  it('start() answers once', async () => {
    const a = make();
    void a.start('offer-sdp');
    void a.start('offer-sdp');
    expect(peer.calls).toEqual(['answer(offer-sdp)']);
    peer.resolveAnswer('answer-sdp');
    await settle();
    expect(sent.filter((m) => m.type === 'answer')).toHaveLength(1);
  });
});
