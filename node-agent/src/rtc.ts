/**
 * werift glue shared by the agent (answerer) and the Node tunnel client
 * (offerer): peer connection config, the data channel adapter, stats.
 *
 * werift facts (FACTS.md, and its 0.24.4 source): it uses only the first
 * stun: and first turn: URL. Its ICE `Connection` falls back to
 * stun.l.google.com whenever no stun: URL is configured — also for an empty
 * list, or a TURN-only one (`validateAddress(stunServer) ?? [google]`) — so
 * `boundGathering` switches STUN off on the gatherer itself. Its
 * setLocalDescription waits for every candidate (an unreachable TURN server:
 * 6.4 s, a dead STUN server: 5 s) and only then starts connectivity checks
 * (an answerer) — `boundGathering` cuts that wait; late candidates still
 * trickle out through `onIceCandidate`.
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

/**
 * How long ICE gathering may hold up session setup, in ms. A reachable
 * STUN/TURN server answers well within it; an unreachable one is not waited
 * for (its candidate, if it ever comes, still trickles).
 */
export const ICE_GATHER_BOUND_MS = 2000;

/** The werift internals `boundGathering` touches (0.24.x, not public API). */
interface WeriftIceConnection {
  stunServer?: unknown;
  protocols?: { localCandidate?: unknown }[];
  pairLocalProtocol?: (protocol: unknown) => void;
  getCandidatePromises?: (addresses: string[], timeoutS?: number) => Promise<unknown>[];
  peerwayBounded?: boolean;
}
interface WeriftPcInternals {
  iceTransports?: { iceGather?: { connection?: WeriftIceConnection } }[];
}

function hasStun(iceServers: IceServer[]): boolean {
  return iceServers.some((s) =>
    (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => /^stuns?:/i.test(u.trim())),
  );
}

/**
 * Call right before `setLocalDescription`: stops werift from asking a public
 * STUN host when none was configured, and bounds how long its gathering
 * (which setLocalDescription awaits) can take to `boundMs`. A candidate that
 * arrives later is still announced (onIceCandidate) and paired with the
 * remote candidates known by then. Returns how many gatherers it adjusted
 * (0 means werift's internals changed: setup still works, only unbounded).
 */
export function boundGathering(
  pc: RTCPeerConnection,
  iceServers: IceServer[],
  boundMs = ICE_GATHER_BOUND_MS,
): number {
  const stun = hasStun(iceServers);
  let adjusted = 0;
  for (const t of (pc as unknown as WeriftPcInternals).iceTransports ?? []) {
    const conn = t.iceGather?.connection;
    if (!conn || conn.peerwayBounded || typeof conn.getCandidatePromises !== 'function') continue;
    conn.peerwayBounded = true;
    if (!stun) conn.stunServer = undefined;
    const original = conn.getCandidatePromises.bind(conn);
    conn.getCandidatePromises = (addresses, timeoutS) =>
      original(addresses, timeoutS).map((p) => {
        let late = false;
        p.then((candidate) => {
          // pair a late local candidate with the remote ones already known
          if (!late || !candidate) return;
          const protocol = conn.protocols?.find((x) => x.localCandidate === candidate);
          if (protocol) conn.pairLocalProtocol?.(protocol);
        }).catch(() => {});
        return Promise.race([
          p,
          new Promise<void>((resolve) =>
            setTimeout(() => {
              late = true;
              resolve();
            }, boundMs).unref(),
          ),
        ]);
      });
    adjusted++;
  }
  return adjusted;
}

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

/** The remote address of the selected ICE pair (the peer, or its relay), if known. */
export function remoteAddress(pc: RTCPeerConnection): string | undefined {
  try {
    const pair = (
      pc as unknown as {
        iceTransports?: {
          getSelectedCandidatePair?: () => { remote?: { candidate?: string } } | null;
        }[];
      }
    ).iceTransports?.[0]?.getSelectedCandidatePair?.();
    // "candidate:<foundation> <component> <transport> <priority> <address> <port> typ …"
    const address = pair?.remote?.candidate?.split(' ')[4];
    return address && /^[0-9a-f.:]+$/i.test(address) ? address : undefined;
  } catch {
    return undefined;
  }
}
