import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CandidatePolicy,
  RELAY_HOLD_MS,
  TCP_RELAY_HOLD_MS,
  isRelayCandidate,
  relayOverTcp,
  type LocalCandidate,
} from './policy';
import type { IceCandidate } from '../signaling-shared';

const cand = (type: string, extra = ''): LocalCandidate => ({
  candidate: {
    candidate: `candidate:1 1 udp 1 192.0.2.2 5000 typ ${type}${extra}`,
    sdpMid: '0',
    sdpMLineIndex: 0,
  },
  type,
});
const text = (c: IceCandidate | null) => (c ? (c.candidate.split(' typ ')[1] ?? '') : 'end');

describe('candidate policy', () => {
  let out: string[];
  let decided: number;
  let p: CandidatePolicy;
  beforeEach(() => {
    vi.useFakeTimers();
    out = [];
    decided = 0;
    p = new CandidatePolicy({
      emit: (c) => out.push(text(c)),
      onTcpRelayDecided: () => decided++,
      now: () => Date.now(),
    });
  });
  afterEach(() => vi.useRealTimers());

  it('sends nothing before release, then what it has in order', () => {
    p.begin();
    p.add(cand('host'));
    p.add(cand('srflx'));
    expect(out).toEqual([]);
    p.release();
    expect(out).toEqual(['host', 'srflx']);
    p.add(cand('prflx'));
    expect(out).toEqual(['host', 'srflx', 'prflx']);
    expect(p.srflx).toBe(true);
    expect(p.reflexive).toBe(true);
  });

  it('holds a UDP relay until RELAY_HOLD_MS after begin, and the end mark after it', () => {
    p.begin();
    p.release();
    vi.advanceTimersByTime(500);
    p.add({ ...cand('relay'), relayTcp: false });
    p.end();
    expect(out).toEqual([]);
    expect(p.reflexive).toBe(true);
    vi.advanceTimersByTime(RELAY_HOLD_MS - 500 - 1);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual(['relay', 'end']);
  });

  it('sends a relay found after the hold at once, and the end mark with nothing held at once', () => {
    p.begin();
    p.release();
    vi.advanceTimersByTime(RELAY_HOLD_MS + 10);
    p.add({ ...cand('relay'), relayTcp: false });
    vi.advanceTimersByTime(0);
    expect(out).toEqual(['relay']);
    p.end();
    expect(out).toEqual(['relay', 'end']);
  });

  it('drops a TCP relay when a UDP relay came, and says the network has UDP', () => {
    p.begin();
    p.release();
    p.add({ ...cand('relay', ' tcp'), relayTcp: true });
    p.add({ ...cand('relay'), relayTcp: false });
    vi.advanceTimersByTime(TCP_RELAY_HOLD_MS);
    expect(decided).toBe(1);
    expect(p.tcpRelayOnly).toBe(false);
    vi.advanceTimersByTime(RELAY_HOLD_MS);
    expect(out).toEqual(['relay']);
  });

  it('sends a lone TCP relay TCP_RELAY_HOLD_MS after the hold, and decides TCP only early', () => {
    p.begin();
    p.release();
    p.add({ ...cand('relay', ' tcp'), relayTcp: true });
    vi.advanceTimersByTime(TCP_RELAY_HOLD_MS);
    expect(p.tcpRelayOnly).toBe(true);
    expect(decided).toBe(1);
    vi.advanceTimersByTime(RELAY_HOLD_MS - 1);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual(['relay tcp']);
  });

  it('without the hold sends relays at once and no end mark', () => {
    const q: string[] = [];
    const np = new CandidatePolicy({
      emit: (c) => q.push(text(c)),
      holdRelay: false,
      sendEnd: false,
    });
    np.begin();
    np.release();
    np.add(cand('relay'));
    np.end();
    expect(q).toEqual(['relay']);
  });

  it('counts candidates someone else sent without sending them, and stop ends everything', () => {
    p.begin();
    p.release();
    p.add(cand('srflx'), true);
    expect(out).toEqual([]);
    expect(p.srflx).toBe(true);
    p.add({ ...cand('relay'), relayTcp: false });
    p.stop();
    vi.advanceTimersByTime(RELAY_HOLD_MS * 2);
    p.end();
    expect(out).toEqual([]);
  });
});

describe('relay helpers', () => {
  it('tells relay lines and TCP relays', () => {
    expect(isRelayCandidate('a=candidate:3 1 udp 1 203.0.113.10 49152 typ relay raddr x')).toBe(
      true,
    );
    expect(isRelayCandidate('candidate:3 1 udp 1 203.0.113.10 49152 typ relay')).toBe(true);
    expect(isRelayCandidate('candidate:1 1 udp 1 192.0.2.2 5000 typ host')).toBe(false);
    expect(relayOverTcp('udp', 'turns:x')).toBe(false);
    expect(relayOverTcp('tcp')).toBe(true);
    expect(relayOverTcp('tls')).toBe(true);
    expect(relayOverTcp(undefined, 'turns:turn.gw.test:5349')).toBe(true);
    expect(relayOverTcp(undefined, 'turn:turn.gw.test:3478?transport=tcp')).toBe(true);
    expect(relayOverTcp(undefined, 'turn:turn.gw.test:3478')).toBe(false);
    expect(relayOverTcp(undefined, null)).toBe(false);
  });
});
