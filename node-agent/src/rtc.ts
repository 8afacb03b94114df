/**
 * werift glue shared by the agent (answerer) and the Node tunnel client
 * (offerer): peer connection config, the data channel adapter, stats.
 *
 * werift facts (FACTS.md): it falls back to a public STUN host when given no
 * ICE servers, so the list is always passed explicitly (an empty list is
 * honoured); it uses only the first stun: and first turn: URL; its
 * setLocalDescription waits for ICE gathering, so the SDP it produces
 * already holds its candidates.
 */
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import {
  fromWeriftDataChannel,
  summariseStats,
  type ConnectionStats,
  type FrameChannel,
  type IceServer,
  type WeriftDataChannelLike,
} from '@peerway/protocol';

/** The data channel label both ends agree on. */
export const TUNNEL_LABEL = 'peerway-tunnel';
/** Largest SCTP message werift accepts by default. */
export const WERIFT_MAX_MESSAGE_BYTES = 65536;

/** A werift peer connection using exactly `iceServers`. */
export function createPeerConnection(iceServers: IceServer[]): RTCPeerConnection {
  const servers = iceServers.flatMap((s) =>
    (Array.isArray(s.urls) ? s.urls : [s.urls]).map((url) => ({
      urls: url,
      ...(s.username ? { username: s.username } : {}),
      ...(s.credential ? { credential: s.credential } : {}),
    })),
  );
  return new RTCPeerConnection({ iceServers: servers, iceUseIpv6: false });
}

/** Wraps werift's data channel as a FrameChannel. */
export function tunnelChannel(dc: RTCDataChannel): FrameChannel {
  return fromWeriftDataChannel(
    dc as unknown as WeriftDataChannelLike,
    (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength),
    WERIFT_MAX_MESSAGE_BYTES,
  );
}

/** How the connection was made, once a pair is selected. */
export async function connectionStats(pc: RTCPeerConnection): Promise<ConnectionStats | null> {
  try {
    return summariseStats((await pc.getStats()) as unknown as Iterable<unknown>);
  } catch {
    return null;
  }
}

/** Resolves when the data channel is open (rejects after `timeoutMs`). */
export function waitOpen(dc: RTCDataChannel, timeoutMs: number): Promise<void> {
  if (dc.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`data channel did not open within ${timeoutMs} ms`)),
      timeoutMs,
    );
    dc.stateChanged.subscribe((s) => {
      if (s === 'open') {
        clearTimeout(t);
        resolve();
      } else if (s === 'closed') {
        clearTimeout(t);
        reject(new Error('data channel closed before opening'));
      }
    });
  });
}
