import { describe, expect, it } from 'vitest';
import { holdBackRelay } from './ice-policy';

describe('holdBackRelay', () => {
  it('takes relay candidates out of the SDP, with their mid', () => {
    const sdp = [
      'v=0',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'a=candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host',
      'a=candidate:2 1 udp 1694498815 203.0.113.21 5000 typ srflx raddr 192.0.2.2 rport 5000',
      'a=candidate:3 1 udp 16777215 203.0.113.10 49152 typ relay raddr 203.0.113.21 rport 5000',
      'a=mid:0',
      '',
    ].join('\r\n');
    const r = holdBackRelay(sdp);
    expect(r.sdp).not.toContain('typ relay');
    expect(r.sdp).toContain('typ srflx');
    expect(r.sdp.endsWith('\r\n')).toBe(true);
    expect(r.relay).toEqual([
      {
        candidate:
          'candidate:3 1 udp 16777215 203.0.113.10 49152 typ relay raddr 203.0.113.21 rport 5000',
        sdpMid: '0',
      },
    ]);
    expect(holdBackRelay('v=0\r\n').relay).toEqual([]);
  });
});
