/**
 * Opens a tunnel from the browser: signaling over `/ws/client` on this
 * origin, the browser offers (werift as offerer stalls against other stacks),
 * candidates trickle both ways, and the data channel becomes a TunnelMux.
 */
import {
  ClientSession,
  PeerwayError,
  SESSION_TIMEOUT_MS,
  TUNNEL_LABEL,
  TunnelMux,
  encodeMessage,
  fromRTCDataChannel,
  parseServerToClient,
  relayOverTcp,
  scheduleStats,
  summariseStats,
  type ClientToServer,
  type EngineName,
  type IceCandidate,
  type LocalCandidate,
  type SessionPeer,
} from '@peerway/protocol';
import type { EarlyStart } from './early';

declare global {
  interface Window {
    __peerwayEarly?: EarlyStart;
  }
}

/** The early start, once, for the first tunnel of the page (later ones start afresh). */
function takeEarlyStart(
  token: string,
  avoid: string[],
  engine: EngineName | undefined,
): { ws?: WebSocket; adopted?: EarlyStart } {
  const early = window.__peerwayEarly;
  delete window.__peerwayEarly;
  if (!early || early.ws.readyState > WebSocket.OPEN) {
    early?.pc?.close();
    return {};
  }
  if (!early.pc) return { ws: early.ws };
  if (early.token === token && avoid.length === 0 && early.engine === engine)
    return { ws: early.ws, adopted: early };
  // asked for another session than this one: drop it (the server ends it with the socket)
  early.pc.close();
  early.ws.close();
  return {};
}

export {
  NeedsEngine,
  RELAY_FAILURE_GRACE_MS,
  RELAY_UNREACHABLE_MS,
  SESSION_TIMEOUT_MS,
  STATS_REPORT_DELAYS_MS,
  TCP_RELAY_HOLD_MS,
  TUNNEL_LABEL,
} from '@peerway/protocol';

export interface OpenTunnel {
  mux: TunnelMux;
  node: { shortId: string; name: string };
  setupMs: number;
  close(): void;
}

export async function openTunnel(
  service: string,
  token: string,
  avoid: string[] = [],
  /**
   * Called once the answer is applied: ICE and DTLS run off the page's main
   * thread, which is idle until the channel opens.
   */
  onAnswered?: () => void,
  /** Ask the node to answer with this engine (after a NeedsEngine). */
  engine?: EngineName,
): Promise<OpenTunnel> {
  const started = performance.now();
  // The page's inline script starts the first signaling connection (and
  // maybe the session) while this bundle loads; later tunnels (reconnects)
  // open their own.
  const early = takeEarlyStart(token, avoid, engine);
  const adopted = early.adopted;
  const ws =
    early.ws ??
    new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/client`);
  const send = (m: ClientToServer) => ws.readyState === WebSocket.OPEN && ws.send(encodeMessage(m));
  let session: ClientSession | undefined;
  const deliver = (data: string) => {
    const r = parseServerToClient(data);
    if (r.ok) session?.receive(r.value);
  };
  // An adopted socket keeps buffering (the inline script's handler) until
  // the session is in place below.
  if (!adopted) ws.onmessage = (ev) => deliver(String(ev.data));
  let pc: RTCPeerConnection | undefined;
  const cleanup = () => {
    pc?.close();
    ws.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      if (ws.readyState === WebSocket.OPEN)
        return (adopted || performance.mark('peerway:signaling'), resolve());
      ws.onopen = () => (adopted || performance.mark('peerway:signaling'), resolve());
      ws.onerror = () =>
        reject(new PeerwayError('session_failed', 'cannot reach the Peerway server'));
    });
    // Signaling stays open only to tell the server when the page goes; the data channel does not need it.
    return await new Promise<OpenTunnel>((resolve, reject) => {
      // The peer connection and its offer do not depend on the session: they
      // are made first (or taken over) and the offer goes with the request.
      const conn = adopted?.pc ?? new RTCPeerConnection();
      pc = conn;
      const dc = adopted?.dc ?? conn.createDataChannel(TUNNEL_LABEL, { ordered: true });
      const offer = adopted?.offer ?? conn.createOffer();
      /** Once connected: the tunnel and its liveness watch. */
      let open: { mux: TunnelMux; liveness: { probe(): void } } | undefined;
      const peer = shellPeer(conn, offer, adopted);
      const s = new ClientSession({
        service,
        token,
        avoid,
        ...(engine ? { engine } : {}),
        ...(adopted ? { ref: adopted.ref } : {}),
        send,
        peer,
        offerWithOpen: true,
        watchRelay: true,
        engineFallback: true,
        timeout: {
          ms: SESSION_TIMEOUT_MS,
          message:
            'the connection to the node could not be set up in time (a firewall may block it, or the relay is unreachable)',
        },
        on: {
          session: () => {
            // one mark per attempt (the page script marked the one it took)
            if (!adopted?.offering) performance.mark('peerway:session');
            conn.onicecandidate = (ev) => {
              const c = localCandidate(ev);
              if (c) s.candidate(c);
              else s.candidatesEnd();
            };
            conn.onicecandidateerror = (ev) => {
              const e = ev as RTCPeerConnectionIceErrorEvent;
              s.candidateError(e.url, e.errorCode);
            };
            conn.onicegatheringstatechange = () => {
              if (conn.iceGatheringState === 'complete') s.gatheringComplete();
            };
            // What the page script saw before this took over goes through the
            // same handlers, in order, as if it happened now (direct ones it
            // has sent already only count; relay ones and the end mark it left to us).
            if (!adopted) return;
            for (const { ev, sent } of adopted.candidates.splice(0)) {
              const c = localCandidate(ev);
              if (sent && c) s.candidate(c, true);
              else if (!sent) conn.onicecandidate(ev);
            }
            for (const ev of adopted.candidateErrors.splice(0)) conn.onicecandidateerror(ev);
            if (conn.iceGatheringState === 'complete')
              conn.onicegatheringstatechange(new Event('icegatheringstatechange'));
          },
          offerSent: () => performance.mark('peerway:offer'),
          answer: () => peer.earlyAnswer || performance.mark('peerway:answer'),
          answered: () => onAnswered?.(),
          // The server saw the node's signaling drop: a hint worth a quick look.
          nodeOffline: () => open?.liveness.probe(),
          // The server withdrew the right to this session (access changed,
          // a share or a serving grant was taken back): the page stops
          // using the channel even if the node were to keep it open.
          ended: (message) => open?.mux.close(`the server ended the session: ${message}`),
          failed: reject,
          connected: (c) => {
            const max = conn.sctp?.maxMessageSize ?? 65536;
            const mux = new TunnelMux(
              fromRTCDataChannel(dc, Number.isFinite(max) && max > 0 ? max : 65536),
              { role: 'client' },
            );
            // what reached the channel before anyone listened, in order
            if (adopted) {
              dc.onmessage = null;
              for (const data of adopted.channelMessages.splice(0))
                dc.dispatchEvent(new MessageEvent('message', { data }));
            }
            const setupMs = performance.now() - started;
            // How the connection was made: once at open, and again after ICE
            // has settled (a better pair may replace the first one that worked).
            scheduleStats(
              () =>
                void conn.getStats().then((r) => {
                  const stats = summariseStats(r);
                  if (stats)
                    send({
                      type: 'session-stats',
                      sessionId: c.sessionId,
                      stats: { ...stats, setupMs },
                    });
                }),
            );
            open = { mux, liveness: watchLiveness(conn, mux) };
            resolve({
              mux,
              node: c.node,
              setupMs,
              close: () => {
                mux.close('closed by the page');
                cleanup();
              },
            });
          },
        },
      });
      session = s;
      conn.onconnectionstatechange = () => {
        if (conn.connectionState === 'failed')
          s.peerFailed('no network path to the node (ICE failed)');
      };
      conn.addEventListener('iceconnectionstatechange', () => {
        if (conn.iceConnectionState === 'connected') performance.mark('peerway:ice');
      });
      dc.onopen = () => {
        performance.mark('peerway:open');
        s.channelOpen();
      };
      if (!adopted) return s.start();
      // asked for already: take over the connection and what the server said so far
      s.start({ offerInOpen: !!adopted.offerInOpen });
      ws.onmessage = (ev) => deliver(String(ev.data));
      for (const data of adopted.msgs.splice(0)) deliver(data);
      // the node's answer the page script took and applied
      if (adopted.answered && s.sessionId)
        s.receive({
          type: 'answer',
          sessionId: s.sessionId,
          sdp: '',
          ...(adopted.answerEngine ? { engine: adopted.answerEngine } : {}),
        });
      // The page script may have got as far as an open channel.
      if (dc.readyState === 'open') dc.onopen(new Event('open'));
    });
  } catch (err) {
    cleanup();
    throw err;
  }
}

/**
 * The page's peer connection as the session's peer; `adopted`: what the
 * page script did with it already (the offer applied and sent, the answer
 * applied).
 */
function shellPeer(
  conn: RTCPeerConnection,
  offer: Promise<RTCSessionDescriptionInit>,
  adopted: EarlyStart | undefined,
): SessionPeer & { earlyAnswer: Promise<boolean> | undefined } {
  return {
    /** The answer the page script applied, not yet told to the session. */
    earlyAnswer: adopted?.answered,
    createOffer: () => offer.then((o) => o.sdp ?? ''),
    async setLocal(iceServers) {
      if (adopted?.offering) {
        if (!(await adopted.offering))
          throw new PeerwayError('session_failed', 'the offer could not be made');
        return null;
      }
      conn.setConfiguration({ iceServers });
      await conn.setLocalDescription(await offer);
      // (read now: the page script may have sent its request after this took over)
      return adopted?.offerInOpen ? null : conn.localDescription!.sdp;
    },
    async applyAnswer(sdp) {
      const applied = this.earlyAnswer;
      this.earlyAnswer = undefined;
      if (applied) {
        if (!(await applied))
          throw new PeerwayError('session_failed', "the node's answer did not apply");
      } else await conn.setRemoteDescription({ type: 'answer', sdp });
    },
    async addCandidate(c) {
      if (c) await conn.addIceCandidate(c as RTCIceCandidateInit).catch(() => {});
    },
    connected: () => conn.connectionState === 'connected',
    iceConnected: () =>
      conn.iceConnectionState === 'connected' || conn.iceConnectionState === 'completed',
  };
}

/** A local candidate as the candidate policy sees it (null: gathering is over). */
function localCandidate(ev: RTCPeerConnectionIceEvent): LocalCandidate | null {
  const c = ev.candidate;
  if (!c) return null;
  return {
    candidate: c.toJSON() as IceCandidate,
    type: c.type,
    relayTcp:
      c.type === 'relay' &&
      relayOverTcp(
        (c as { relayProtocol?: string }).relayProtocol,
        (ev as { url?: string | null }).url,
      ),
  };
}

/** How often the shell pings the node over the tunnel, and how long it waits. */
export const LIVENESS_PING_MS = 3000;
export const LIVENESS_TIMEOUT_MS = 4000;
/** How long ICE may stay "disconnected" before the tunnel is given up. */
export const DISCONNECTED_GRACE_MS = 2500;
/**
 * After the server says the node went offline, how long a ping may take.
 * A live node answers in a few milliseconds, even relayed; a dead one never.
 */
export const NODE_OFFLINE_PROBE_MS = 1000;

/**
 * A node that dies without closing (power cut, kill -9) leaves the data
 * channel open for tens of seconds. The shell notices within a few seconds
 * instead: tunnel pings, and ICE staying disconnected, close the mux, which
 * makes the shell reconnect (to another replica if there is one). When the
 * server tells it the node's signaling dropped, one short ping settles it
 * within a second.
 */
function watchLiveness(pc: RTCPeerConnection, mux: TunnelMux): { probe(): void } {
  let grace: ReturnType<typeof setTimeout> | null = null;
  const dead = (why: string) => {
    clearInterval(timer);
    if (grace) clearTimeout(grace);
    if (!mux.isClosed) mux.close(why);
    pc.close();
  };
  const timer = setInterval(() => {
    if (mux.isClosed) return dead('closed');
    const heard = mux.messagesReceived;
    mux.ping(LIVENESS_TIMEOUT_MS).catch(() => {
      // The pong may be queued behind a busy node's bulk data (the channel is
      // ordered): anything else arriving meanwhile means it is late, not gone.
      // (Found by the browser fan-out: 50 pages downloading at once lost 11
      // healthy tunnels this way.)
      if (mux.messagesReceived === heard) dead('the node stopped answering');
    });
  }, LIVENESS_PING_MS);
  pc.addEventListener('connectionstatechange', () => {
    const st = pc.connectionState;
    if (st === 'failed' || st === 'closed') dead(`connection ${st}`);
    else if (st === 'disconnected')
      grace ??= setTimeout(() => dead('connection lost'), DISCONNECTED_GRACE_MS);
    else if (grace) {
      clearTimeout(grace);
      grace = null;
    }
  });
  mux.onClose(() => {
    clearInterval(timer);
    if (grace) clearTimeout(grace);
  });
  return {
    probe() {
      if (!mux.isClosed) mux.ping(NODE_OFFLINE_PROBE_MS).catch(() => dead('the node went offline'));
    },
  };
}
