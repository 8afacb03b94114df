/**
 * werift glue shared by the agent (answerer) and the Node tunnel client
 * (offerer): peer connection config, the data channel adapter, stats.
 *
 * werift facts (measured here, and read in its 0.24.4 source): it uses only the first
 * stun: and first turn: URL. Its ICE `Connection` falls back to
 * stun.l.google.com whenever no stun: URL is configured — also for an empty
 * list, or a TURN-only one (`validateAddress(stunServer) ?? [google]`) — so
 * `boundGathering` switches STUN off on the gatherer itself. Its
 * setLocalDescription waits for every candidate (an unreachable TURN server:
 * 6.4 s, a dead STUN server: 5 s) and only then starts connectivity checks
 * (an answerer) — `boundGathering` cuts that wait; late candidates still
 * trickle out through `onIceCandidate`. As the DTLS client it sleeps 100 ms
 * before its first flight, and it numbers its first records after the
 * handshake wrongly; `tuneDtls` mends both.
 */
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import {
  summariseStats,
  type ConnectionStats,
  type FrameChannel,
  type IceServer,
} from '@peerway/protocol';
import { fromWeriftDataChannel, type WeriftDataChannelLike } from './channel';

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

/** The werift internals `tuneDtls` touches (0.24.x, not public API). */
interface WeriftDtlsSocket {
  onData?: (data: Buffer) => void;
  send?: (data: Buffer) => Promise<unknown>;
  closed?: boolean;
}
interface WeriftDtlsTransport {
  role?: string;
  dtls?: {
    connect?: () => Promise<void>;
    onHandleHandshakes?: (handshakes: { msg_type: number }[]) => Promise<void>;
    transport?: { socket?: WeriftDtlsSocket };
    dtls?: { recordSequenceNumber?: number; flight?: number };
  };
  onStateChange?: { subscribe: (cb: (state: string) => void) => unknown };
  peerwayTuned?: boolean;
}

/** When the first ClientHello is sent again if the peer has said nothing, ms. */
export const CLIENT_HELLO_RESEND_MS = [10, 30, 70, 150, 300];

/**
 * The highest sequence number among the DTLS records in `datagram` that
 * carry a handshake message in epoch ≥ 1 (the Finished), or -1. Record
 * header: type (1), version (2), epoch (2), sequence number (6), length (2).
 */
export function encryptedHandshakeSeq(datagram: Uint8Array): number {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  let highest = -1;
  for (let o = 0; o + 13 <= datagram.byteLength; o += 13 + view.getUint16(o + 11)) {
    if (datagram[o] === 22 && view.getUint16(o + 3) >= 1)
      highest = Math.max(highest, view.getUint16(o + 5) * 2 ** 32 + view.getUint32(o + 7));
  }
  return highest;
}

/**
 * Call before `setLocalDescription`. Mends two things in werift's DTLS
 * (0.24.4) for every peer connection:
 *
 * - **Record numbers.** werift sends its Finished in epoch 1 with the next
 *   epoch-0 sequence number (say 6), then restarts the count at 0 for
 *   application data, so its 6th data record reuses that number. Chromium
 *   (BoringSSL) drops it as a replay, and the SCTP packet inside is lost
 *   until werift retransmits it after a 1 s RTO: one cold open in five
 *   waited a second for its first response (found with a packet capture on
 *   loopback). Once connected, the count here resumes after the Finished.
 * - **The 100 ms sleep.** As the DTLS client (the agent, which is
 *   ICE-controlled), werift waits a fixed 100 ms after ICE connects before
 *   its ClientHello (RTCDtlsTransport.start), so that a werift server has
 *   set itself up by then; that was ~100 of the ~135 ms werift spent in
 *   DTLS+SCTP. Here the ClientHello goes out at once and, until the peer
 *   answers anything, again after 10, 30, 70, 150 and 300 ms (a
 *   retransmitted ClientHello is ordinary DTLS; werift's own retransmission
 *   starts at 500 ms). Chromium keeps a ClientHello that arrives before it
 *   is ready; a werift server drops it, hence the resends (and a repeated
 *   HelloVerifyRequest they may draw is ignored). werift⇄werift on
 *   loopback: ICE-connected to channel open 110 → 10–14 ms, 0 of 60 opens
 *   slower than 50 ms (without the resends 7 of 60 waited for werift's
 *   500 ms retransmit).
 *
 * Returns how many transports it adjusted (0: werift changed; setup still
 * works, only slower and with the lost record).
 */
export function tuneDtls(pc: RTCPeerConnection): number {
  let adjusted = 0;
  const transports = (pc as unknown as { dtlsTransports?: WeriftDtlsTransport[] }).dtlsTransports;
  for (const t of transports ?? []) {
    if (t.peerwayTuned || typeof t.onStateChange?.subscribe !== 'function') continue;
    t.peerwayTuned = true;
    adjusted++;
    let finishedSeq = -1;
    let unwrapSend = () => {};
    t.onStateChange.subscribe((state) => {
      if (state === 'connected') {
        const ctx = t.dtls?.dtls;
        if (ctx && typeof ctx.recordSequenceNumber === 'number' && finishedSeq >= 0)
          ctx.recordSequenceNumber = Math.max(ctx.recordSequenceNumber, finishedSeq);
        unwrapSend(); // the handshake is over: data goes out untouched
        return;
      }
      if (state !== 'connecting') return;
      // start() creates the DtlsClient or DtlsServer synchronously right after
      // this event (then, as the client, sleeps): a microtask later it is there.
      queueMicrotask(() => {
        const dtls = t.dtls;
        const socket = dtls?.transport?.socket;
        const { onData, send } = socket ?? {};
        if (!dtls || !socket || !onData || !send) return;
        let heard = false;
        let hello: Buffer | undefined;
        socket.onData = (data) => {
          heard = true;
          socket.onData = onData;
          onData(data);
        };
        socket.send = (data) => {
          hello ??= data;
          finishedSeq = Math.max(finishedSeq, encryptedHandshakeSeq(data));
          return send(data);
        };
        unwrapSend = () => (socket.send = send);
        const handle = dtls.onHandleHandshakes;
        if (t.role !== 'client' || !dtls.connect || !handle) return;
        // A resent ClientHello can draw a second HelloVerifyRequest from a
        // werift server, and werift's client fails the handshake on it
        // (Flight3.exec throws when already in flight 3): drop repeats.
        dtls.onHandleHandshakes = (handshakes) => {
          const flight = dtls.dtls?.flight ?? 0;
          return handle(flight >= 3 ? handshakes.filter((h) => h.msg_type !== 3) : handshakes);
        };
        const connecting = dtls.connect();
        connecting.catch(() => {}); // werift's own call below reports it
        dtls.connect = () => connecting;
        for (const ms of CLIENT_HELLO_RESEND_MS) {
          setTimeout(() => {
            if (!heard && hello && !socket.closed) send(hello).catch(() => {});
          }, ms).unref();
        }
      });
    });
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

/**
 * Receive (and send) buffer asked for on werift's UDP sockets, in bytes
 * (the kernel caps it at net.core.rmem_max / wmem_max).
 */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** The werift internals `enlargeSocketBuffers` touches (0.24.x, not public API). */
interface WeriftUdpSocket {
  setRecvBufferSize?: (n: number) => void;
  setSendBufferSize?: (n: number) => void;
}
interface WeriftChannelInternals {
  sctp?: {
    dtlsTransport?: {
      iceTransport?: {
        connection?: { protocols?: { transport?: { socket?: WeriftUdpSocket } }[] };
      };
    };
  };
}

/**
 * Gives werift's UDP sockets (the ICE ones under `dc`) a receive buffer of
 * `bytes` instead of the kernel's default 208 KiB. werift reads datagrams
 * on Node's event loop; while a burst is being decrypted the kernel queues
 * the next ones, and at 50 ms RTT a full default buffer dropped 432
 * datagrams of one 16 MiB download (UdpRcvbufErrors in the visitor's
 * namespace): every drop halves werift's congestion window, which then
 * grows back by 1200 bytes per round trip. Returns how many sockets it set.
 */
export function enlargeSocketBuffers(dc: RTCDataChannel, bytes = UDP_SOCKET_BUFFER_BYTES): number {
  let n = 0;
  const protocols =
    (dc as unknown as WeriftChannelInternals).sctp?.dtlsTransport?.iceTransport?.connection
      ?.protocols ?? [];
  for (const p of protocols) {
    const socket = p.transport?.socket;
    if (typeof socket?.setRecvBufferSize !== 'function') continue;
    try {
      socket.setRecvBufferSize(bytes);
      socket.setSendBufferSize?.(bytes);
      n++;
    } catch {
      // not bound (yet) or closed: it keeps the default
    }
  }
  return n;
}

/** How long a receiver may hold back the SACK of a lone packet, ms (libdatachannel's default; werift's own is 200). */
export const SACK_DELAY_MS = 20;

/** The werift internals `ackEverySecondPacket` touches (0.24.x, not public API). */
interface WeriftSctp {
  isStopped?: boolean;
  sackNeeded?: boolean;
  sackImmediate?: boolean;
  sackTimeout?: ReturnType<typeof setTimeout>;
  sackDuplicates?: number[];
  sackMisOrdered?: Set<number>;
  lastReceivedTsn?: number;
  receiveDataChunk?: (chunk: unknown) => void;
  scheduleSack?: () => Promise<void>;
  sendSack?: () => Promise<void>;
  peerwaySack?: boolean;
}

/**
 * Makes werift's SCTP acknowledge every second packet (RFC 9260 §6.2)
 * instead of every DATA chunk, at once still on a duplicate or a gap, and
 * a lone packet within `delayMs`. werift sends one 1200-byte chunk per
 * packet and answered each with a SACK: a datagram to encrypt and send for
 * every one received, and one more for the sender to decrypt and process.
 * Returns false when werift's internals are not there (it then acks as before).
 */
export function ackEverySecondPacket(dc: RTCDataChannel, delayMs = SACK_DELAY_MS): boolean {
  const s = (dc as unknown as { sctp?: { sctp?: WeriftSctp } }).sctp?.sctp;
  const { receiveDataChunk, sendSack } = s ?? {};
  if (
    !s ||
    s.peerwaySack ||
    !receiveDataChunk ||
    !sendSack ||
    !s.sackDuplicates ||
    !s.sackMisOrdered
  )
    return false;
  s.peerwaySack = true;
  s.receiveDataChunk = (chunk) => {
    const immediate = s.sackImmediate;
    const duplicates = s.sackDuplicates?.length ?? 0;
    receiveDataChunk.call(s, chunk);
    if (
      !immediate &&
      (s.sackDuplicates?.length ?? 0) === duplicates &&
      s.sackMisOrdered?.size === 0
    )
      s.sackImmediate = false; // werift's handleData acks at once after the second packet
  };
  s.scheduleSack = async () => {
    if (s.isStopped || !s.sackNeeded) return;
    if (s.sackImmediate) {
      clearTimeout(s.sackTimeout);
      s.sackTimeout = undefined;
      return s.sendSack?.();
    }
    s.sackTimeout ??= setTimeout(() => {
      s.sackTimeout = undefined;
      s.sendSack?.().catch(() => {});
    }, delayMs);
  };
  // werift clears "a SACK is due" once the SACK has gone out, after an await:
  // a packet that arrived meanwhile (and left only the timer above) would go
  // unacknowledged until the next one or the sender's 1 s retransmission.
  s.sendSack = async () => {
    const covered = s.lastReceivedTsn;
    await sendSack.call(s);
    if (s.lastReceivedTsn !== covered && !s.sackNeeded && !s.isStopped) {
      s.sackNeeded = true;
      void s.scheduleSack?.();
    }
  };
  return true;
}

/** Wraps werift's data channel as a FrameChannel. */
export function tunnelChannel(dc: RTCDataChannel): FrameChannel {
  enlargeSocketBuffers(dc);
  ackEverySecondPacket(dc);
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
