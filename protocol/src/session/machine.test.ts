import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ClientSession,
  type ClientSessionOptions,
  type SessionPeer,
  type SessionState,
} from './machine';
import { NeedsEngine, RELAY_FAILURE_GRACE_MS, RELAY_HOLD_MS, RELAY_UNREACHABLE_MS } from './policy';
import { scheduleStats } from './stats';
import type { ClientToServer, ServerToClient } from '../signaling-client';
import type { PeerwayError } from '../errors';

const NODE = { shortId: 'abc123', name: 'home' };
const TURN = [{ urls: 'turn:turn.gw.test:3478', username: 'u', credential: 'c' }];

/** A peer that does what it is told, and records what it was asked. */
class FakePeer implements SessionPeer {
  calls: string[] = [];
  isConnected = false;
  isIceConnected = false;
  offerError: Error | null = null;
  answerError: Error | null = null;
  localSdp: string | null = 'local-sdp';
  createOffer(iceServers?: unknown[]): Promise<string> {
    this.calls.push(iceServers ? `offer(${iceServers.length})` : 'offer');
    return this.offerError ? Promise.reject(this.offerError) : Promise.resolve('offer-sdp');
  }
  setLocal(iceServers: unknown[]): Promise<string | null> {
    this.calls.push(`local(${iceServers.length})`);
    return Promise.resolve(this.localSdp);
  }
  applyAnswer(sdp: string): Promise<void> {
    this.calls.push(`answer(${sdp})`);
    return this.answerError ? Promise.reject(this.answerError) : Promise.resolve();
  }
  addCandidate(c: { candidate: string } | null): Promise<void> {
    this.calls.push(`candidate(${c ? c.candidate : 'end'})`);
    return Promise.resolve();
  }
  connected(): boolean {
    return this.isConnected;
  }
  iceConnected(): boolean {
    return this.isIceConnected;
  }
}

const tcpRelay = {
  candidate: { candidate: 'candidate:9 1 udp 1 203.0.113.10 1 typ relay', sdpMid: '0' },
  type: 'relay',
  relayTcp: true,
};

describe('client session state machine', () => {
  let peer: FakePeer;
  let sent: ClientToServer[];
  let states: SessionState[];
  let failures: PeerwayError[];
  let connected: { sessionId: string; engine: string | undefined }[];
  let ended: string[];
  let offline: number;
  let answered: number;

  const make = (o: Partial<ClientSessionOptions> = {}): ClientSession =>
    new ClientSession({
      service: 'web',
      token: 'tok',
      ref: 'r1',
      send: (m) => sent.push(m),
      peer,
      now: () => Date.now(),
      on: {
        state: (s) => states.push(s),
        failed: (e) => failures.push(e),
        connected: (c) => connected.push(c),
        ended: (m) => ended.push(m),
        nodeOffline: () => offline++,
        answered: () => answered++,
      },
      ...o,
    });
  const session = (iceServers: unknown[] = []): ServerToClient =>
    ({ type: 'session', ref: 'r1', sessionId: 's1', iceServers, node: NODE }) as ServerToClient;
  const answer = (engine?: 'werift' | 'node-datachannel'): ServerToClient => ({
    type: 'answer',
    sessionId: 's1',
    sdp: 'answer-sdp',
    ...(engine ? { engine } : {}),
  });
  const flush = () => vi.advanceTimersByTimeAsync(0);

  beforeEach(() => {
    vi.useFakeTimers();
    peer = new FakePeer();
    sent = [];
    states = [];
    failures = [];
    connected = [];
    ended = [];
    offline = 0;
    answered = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('goes idle → requesting → offering → answering → connecting → connected, the offer after the session', async () => {
    const s = make({ avoid: ['ffffff'], engine: 'werift' });
    expect(s.state).toBe('idle');
    s.start();
    expect(sent).toEqual([
      {
        type: 'open',
        ref: 'r1',
        service: 'web',
        token: 'tok',
        avoid: ['ffffff'],
        engine: 'werift',
      },
    ]);
    s.receive(session(TURN));
    expect(s.state).toBe('offering');
    await flush();
    expect(peer.calls).toEqual(['offer(1)', 'local(1)']);
    expect(sent[1]).toEqual({ type: 'offer', sessionId: 's1', sdp: 'local-sdp' });
    expect(s.state).toBe('answering');
    s.receive(answer('werift'));
    await flush();
    expect(s.state).toBe('connecting');
    expect(answered).toBe(1);
    s.channelOpen();
    expect(states).toEqual(['requesting', 'offering', 'answering', 'connecting', 'connected']);
    expect(connected).toEqual([{ sessionId: 's1', node: NODE, engine: 'werift' }]);
  });

  it('sends the offer with the request when told, and no offer message after', async () => {
    const s = make({ offerWithOpen: true });
    s.start();
    expect(s.state).toBe('idle');
    await flush();
    expect(sent).toEqual([
      { type: 'open', ref: 'r1', service: 'web', token: 'tok', offer: 'offer-sdp' },
    ]);
    s.receive(session());
    await flush();
    expect(sent).toHaveLength(1);
    expect(peer.calls).toEqual(['offer', 'local(0)']);
    expect(s.state).toBe('answering');
  });

  it('asks without an offer when it cannot be made, and fails with its reason at the session', async () => {
    peer.offerError = new Error('no codecs');
    const s = make({ offerWithOpen: true });
    s.start();
    await flush();
    expect(sent).toEqual([{ type: 'open', ref: 'r1', service: 'web', token: 'tok' }]);
    s.receive(session());
    await flush();
    expect(s.state).toBe('failed');
    expect(failures[0]!.message).toBe('no codecs');
  });

  it('takes over a request that went out already, and ignores sessions of other refs', async () => {
    const s = make();
    s.start({ offerInOpen: true });
    expect(sent).toEqual([]);
    expect(s.state).toBe('requesting');
    s.receive({ ...session(), ref: 'other' } as ServerToClient);
    expect(s.state).toBe('requesting');
    s.receive(session());
    await flush();
    expect(sent).toEqual([]); // the offer went in the adopted request
    expect(s.state).toBe('answering');
  });

  it('sends local candidates only after the offer, holding back the relay', async () => {
    const s = make();
    s.start();
    s.candidate({
      candidate: { candidate: 'candidate:1 1 udp 1 192.0.2.2 1 typ host' },
      type: 'host',
    });
    s.receive(session());
    s.candidate({
      candidate: { candidate: 'candidate:2 1 udp 1 203.0.113.10 1 typ relay' },
      type: 'relay',
    });
    s.candidatesEnd();
    await flush();
    expect(sent.map((m) => m.type)).toEqual(['open', 'offer', 'candidate']);
    await vi.advanceTimersByTimeAsync(RELAY_HOLD_MS);
    expect(sent.slice(2)).toEqual([
      {
        type: 'candidate',
        sessionId: 's1',
        candidate: { candidate: 'candidate:1 1 udp 1 192.0.2.2 1 typ host' },
      },
      {
        type: 'candidate',
        sessionId: 's1',
        candidate: { candidate: 'candidate:2 1 udp 1 203.0.113.10 1 typ relay' },
      },
      { type: 'candidate', sessionId: 's1', candidate: null },
    ]);
  });

  it('passes the node candidates of its session to the peer', async () => {
    const s = make();
    s.start();
    s.receive({ type: 'candidate', sessionId: 's1', candidate: { candidate: 'early' } });
    s.receive(session());
    s.receive({ type: 'candidate', sessionId: 's1', candidate: { candidate: 'c1' } });
    s.receive({ type: 'candidate', sessionId: 'other', candidate: { candidate: 'c2' } });
    s.receive({ type: 'candidate', sessionId: 's1', candidate: null });
    await flush();
    expect(peer.calls.filter((c) => c.startsWith('candidate'))).toEqual([
      'candidate(c1)',
      'candidate(end)',
    ]);
  });

  it('fails on a session-error for its ref or session, and on an error before the session', () => {
    const a = make();
    a.start();
    a.receive({ type: 'session-error', ref: 'r1', code: 'not_found', message: 'no such service' });
    expect(a.state).toBe('failed');
    expect(failures[0]!.code).toBe('not_found');
    const b = make();
    b.start();
    b.receive({ type: 'error', code: 'rate_limited', message: 'slow down' });
    expect(failures[1]!.message).toBe('slow down');
    const c = make();
    c.start();
    c.receive(session());
    c.receive({ type: 'error', code: 'bad_request', message: 'about something else' });
    c.receive({ type: 'session-error', sessionId: 's1', code: 'forbidden', message: 'gone' });
    expect(failures.map((f) => f.message)).toEqual(['no such service', 'slow down', 'gone']);
  });

  it('after connected, a session-error ends the session and node-offline is passed on', async () => {
    const s = make();
    s.start();
    s.receive(session());
    await flush();
    s.channelOpen();
    s.receive({ type: 'node-offline', sessionId: 's1' });
    s.receive({ type: 'node-offline', sessionId: 'other' });
    s.receive({
      type: 'session-error',
      sessionId: 's1',
      code: 'forbidden',
      message: 'share revoked',
    });
    expect(offline).toBe(1);
    expect(ended).toEqual(['share revoked']);
    expect(failures).toEqual([]);
    expect(s.state).toBe('connected');
  });

  it('gives up at the overall timeout with its message, and not once connected', async () => {
    const s = make({ timeout: { ms: 15_000, message: 'not in time' } });
    s.start();
    s.receive(session());
    await vi.advanceTimersByTimeAsync(14_999);
    expect(s.state).toBe('answering');
    await vi.advanceTimersByTimeAsync(1);
    expect(s.state).toBe('failed');
    expect(failures[0]!.message).toBe('not in time');
    expect(failures[0]!.code).toBe('session_failed');
    const t = make({ timeout: { ms: 15_000, message: 'not in time' } });
    t.start();
    t.receive(session());
    await flush();
    t.channelOpen();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.state).toBe('connected');
    expect(failures).toHaveLength(1);
  });

  it('limits each state on its own: requesting, answering, connecting', async () => {
    const stateTimeouts = {
      requesting: { ms: 100, message: 'no answer from the server' },
      answering: { ms: 200, message: 'no answer within 200 ms' },
      connecting: { ms: 300, message: 'data channel did not open within 300 ms' },
    };
    const a = make({ stateTimeouts });
    a.start();
    await vi.advanceTimersByTimeAsync(100);
    const b = make({ stateTimeouts });
    b.start();
    await vi.advanceTimersByTimeAsync(99);
    b.receive(session());
    await vi.advanceTimersByTimeAsync(199);
    expect(b.state).toBe('answering');
    await vi.advanceTimersByTimeAsync(1);
    const c = make({ stateTimeouts });
    c.start();
    c.receive(session());
    await vi.advanceTimersByTimeAsync(150);
    c.receive(answer());
    await vi.advanceTimersByTimeAsync(299);
    expect(c.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(1);
    expect(failures.map((f) => f.message)).toEqual([
      'no answer from the server',
      'no answer within 200 ms',
      'data channel did not open within 300 ms',
    ]);
  });

  it('fails when the peer fails, or the answer does not apply', async () => {
    const a = make();
    a.start();
    a.receive(session());
    await flush();
    a.peerFailed('no network path to the node (ICE failed)');
    expect(failures[0]!.message).toBe('no network path to the node (ICE failed)');
    peer.answerError = new Error('bad answer');
    const b = make();
    b.start();
    b.receive(session());
    await flush();
    b.receive(answer());
    await flush();
    expect(b.state).toBe('failed');
    expect(failures[1]!.message).toBe('bad answer');
  });

  it('with STUN/TURN and nothing reflexive by RELAY_UNREACHABLE_MS, says the relay is unreachable', async () => {
    const a = make({ watchRelay: true });
    a.start();
    a.receive(session(TURN));
    await vi.advanceTimersByTimeAsync(RELAY_UNREACHABLE_MS - 1);
    expect(a.state).toBe('answering');
    await vi.advanceTimersByTimeAsync(1);
    expect(failures[0]!.message).toMatch(/relay \(TURN\) is unreachable/);
    // a server-reflexive candidate, or no ICE servers at all, and it waits
    const b = make({ watchRelay: true });
    b.start();
    b.receive(session(TURN));
    b.candidate({ candidate: { candidate: 'x typ srflx' }, type: 'srflx' });
    const c = make({ watchRelay: true });
    c.start();
    c.receive(session([]));
    await vi.advanceTimersByTimeAsync(RELAY_UNREACHABLE_MS * 2);
    expect(b.state).toBe('answering');
    expect(c.state).toBe('answering');
    expect(failures).toHaveLength(1);
  });

  it('after a relay error and gathering complete, fails RELAY_FAILURE_GRACE_MS later unless connected', async () => {
    const a = make({ watchRelay: true });
    a.start();
    a.receive(session());
    a.candidateError('turn:turn.gw.test:3478', 401);
    a.gatheringComplete();
    await vi.advanceTimersByTimeAsync(RELAY_FAILURE_GRACE_MS - 1);
    expect(a.state).toBe('answering');
    await vi.advanceTimersByTimeAsync(1);
    expect(failures[0]!.message).toMatch(/relay \(TURN\) refused our credentials/);
    const b = make({ watchRelay: true });
    b.start();
    b.receive(session());
    b.candidateError('stun:stun.gw.test:3478', 701); // not the relay
    b.gatheringComplete();
    const c = make({ watchRelay: true });
    c.start();
    c.receive(session());
    c.candidateError('turns:turn.gw.test:5349', 701);
    c.gatheringComplete();
    peer.isConnected = true;
    await vi.advanceTimersByTimeAsync(RELAY_FAILURE_GRACE_MS);
    expect(failures).toHaveLength(1);
  });

  it('asks for werift when only a TCP relay came and the node answered with node-datachannel', async () => {
    const a = make({ engineFallback: true });
    a.start();
    a.receive(session());
    a.candidate(tcpRelay);
    await flush();
    a.receive(answer('node-datachannel'));
    await flush();
    expect(a.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(a.state).toBe('failed');
    expect(failures[0]).toBeInstanceOf(NeedsEngine);
    expect((failures[0] as NeedsEngine).engine).toBe('werift');
    // the decision made before the answer: asked at the answer
    const b = make({ engineFallback: true });
    b.start();
    b.receive(session());
    b.candidate(tcpRelay);
    await vi.advanceTimersByTimeAsync(300);
    expect(b.state).toBe('answering');
    b.receive(answer('node-datachannel'));
    await flush();
    expect(failures[1]).toBeInstanceOf(NeedsEngine);
  });

  it('keeps its engine when a werift answer, an srflx, an engine asked for or connected ICE says so', async () => {
    const cases: [Partial<ClientSessionOptions>, 'werift' | 'node-datachannel', string | null][] = [
      [{}, 'werift', null],
      [{}, 'node-datachannel', 'srflx'],
      [{ engine: 'werift' }, 'node-datachannel', null],
      [{}, 'node-datachannel', 'ice'],
      [{ engineFallback: false }, 'node-datachannel', null],
    ];
    for (const [o, engine, extra] of cases) {
      peer.isIceConnected = extra === 'ice';
      const s = make({ engineFallback: true, ...o });
      s.start();
      s.receive(session());
      if (extra === 'srflx') s.candidate({ candidate: { candidate: 'x' }, type: 'srflx' });
      s.candidate(tcpRelay);
      s.receive(answer(engine));
      await vi.advanceTimersByTimeAsync(RELAY_HOLD_MS * 2);
      expect(s.state).toBe('connecting');
    }
    expect(failures).toEqual([]);
  });

  it('an answer while the offer is still being applied moves on to connecting and stays there', async () => {
    let applied!: (sdp: string | null) => void;
    peer.setLocal = () => new Promise((r) => (applied = r));
    const s = make();
    s.start({ offerInOpen: true });
    s.receive(session());
    s.receive(answer());
    await flush();
    expect(s.state).toBe('connecting');
    applied(null);
    await flush();
    expect(s.state).toBe('connecting');
    expect(sent).toEqual([]);
    expect(states).toEqual(['requesting', 'offering', 'connecting']);
  });

  it('connects when the channel opened before the session was seen (an early start)', async () => {
    const s = make();
    s.start({ offerInOpen: true });
    s.channelOpen();
    expect(s.state).toBe('requesting');
    s.receive(session());
    expect(s.state).toBe('connected');
    await flush();
    expect(s.state).toBe('connected');
    expect(connected).toHaveLength(1);
  });

  it('close stops everything: no timeout, no candidates, no more events', async () => {
    const s = make({ timeout: { ms: 1000, message: 'late' } });
    s.start();
    s.receive(session());
    await flush();
    s.candidate({ candidate: { candidate: 'r typ relay' }, type: 'relay' });
    const before = sent.length;
    s.close();
    expect(s.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(5000);
    s.receive(answer());
    s.channelOpen();
    expect(sent.length).toBe(before);
    expect(failures).toEqual([]);
    expect(connected).toEqual([]);
    expect(peer.calls).not.toContain('answer(answer-sdp)');
  });
});

describe('stats schedule', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  it('reports at once, at 2 s and at 6 s; cancel stops the rest', () => {
    const at: number[] = [];
    const t0 = Date.now();
    scheduleStats(() => at.push(Date.now() - t0));
    vi.advanceTimersByTime(10_000);
    expect(at).toEqual([0, 2000, 6000]);
    const more: number[] = [];
    const cancel = scheduleStats(() => more.push(Date.now() - t0), [100]);
    cancel();
    vi.advanceTimersByTime(1000);
    expect(more).toEqual([10_000]);
  });
});
