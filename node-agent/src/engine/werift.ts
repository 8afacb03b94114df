/** The werift engine: pure TypeScript, runs wherever Node runs. */
import type { IceServer } from '@peerway/protocol';
import {
  boundGathering,
  connectionStats,
  createPeerConnection,
  remoteAddress,
  tunnelChannel,
} from '../rtc';
import type { AnswerSession, RtcEngine } from './types';

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
          void pc.setLocalDescription(answer).catch(() => {});
        });
        return answer.sdp;
      },
      async addRemoteCandidate(c) {
        await pc.addIceCandidate(c ?? undefined);
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
