/** The werift engine: pure TypeScript, runs wherever Node runs. */
import type { IceServer } from '@peerway/protocol';
import {
  boundGathering,
  connectionStats,
  createPeerConnection,
  remoteAddress,
  tuneDtls,
  tunnelChannel,
} from './peer';
import type { AnswerSession, RtcEngine } from '../types';

export const weriftEngine: RtcEngine = {
  name: 'werift',
  answerer(iceServers: IceServer[], label: string): AnswerSession {
    const pc = createPeerConnection(iceServers);
    let got = false;
    return {
      async answer(offer) {
        await pc.setRemoteDescription({ type: 'offer', sdp: offer });
        const answer = await pc.createAnswer();
        // werift gathers inside setLocalDescription and starts its checks
        // only after; boundGathering keeps a slow or dead STUN/TURN server
        // from holding that up. The answer goes out before (trickle ICE).
        queueMicrotask(() => {
          boundGathering(pc, iceServers);
          tuneDtls(pc);
          void pc.setLocalDescription(answer).catch(() => {});
        });
        return answer.sdp;
      },
      async addRemoteCandidate(c) {
        // Chromium hides its LAN addresses behind mDNS names (*.local). werift
        // would resolve each with its own multicast socket and a 10 s wait;
        // with a few sessions opening at once that starved the agent (checks
        // of other sessions' tokens took 3 s) and failed them all. The
        // browser's checks to our candidates reveal its address anyway (peer
        // reflexive), so these names are skipped.
        if (
          c?.candidate &&
          /^\S+ \d+ \S+ \d+ \S+\.local /i.test(c.candidate.replace(/^candidate:/, ''))
        )
          return;
        // Nor the end-of-candidates mark: werift fails the connection at once
        // when it arrives with no pair yet, which is what skipping mDNS names
        // leaves until the browser's first check (setup is bounded elsewhere).
        if (!c?.candidate) return;
        await pc.addIceCandidate(c);
      },
      onCandidate(cb) {
        pc.onIceCandidate.subscribe((c) => {
          if (c?.candidate) cb({ candidate: c.candidate, sdpMid: c.sdpMid ?? null });
        });
      },
      onChannel(cb) {
        pc.onDataChannel.subscribe((dc) => {
          if (dc.label !== label || got) return dc.close();
          got = true;
          cb(tunnelChannel(dc));
        });
      },
      onEnd(cb) {
        pc.connectionStateChange.subscribe((s) => {
          if (s === 'failed' || s === 'closed') cb(s);
        });
      },
      stats: () => connectionStats(pc),
      remoteAddress: () => remoteAddress(pc),
      close: () => void pc.close().catch(() => {}),
    };
  },
};
