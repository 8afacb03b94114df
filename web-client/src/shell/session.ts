/**
 * Opens a tunnel from the browser: signaling over `/ws/client` on this
 * origin, the browser offers (werift as offerer stalls against other stacks),
 * candidates trickle both ways, and the data channel becomes a TunnelMux.
 */
import {
  PeerwayError,
  TunnelMux,
  encodeMessage,
  fromRTCDataChannel,
  parseServerToClient,
  RELAY_HOLD_MS,
  summariseStats,
  type ClientToServer,
  type EngineName,
  type ServerToClient,
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

export const TUNNEL_LABEL = 'peerway-tunnel';
/** A session not open by then is given up (a clear error, not a hang). */
export const SESSION_TIMEOUT_MS = 15_000;
/** After gathering ends with a failed relay, how long a direct path may still take. */
export const RELAY_FAILURE_GRACE_MS = 3000;
/** With STUN/TURN configured, no server-reflexive or relay candidate by then means they are unreachable. */
export const RELAY_UNREACHABLE_MS = 5000;
/** When to report the connection's stats again after it opened. */
export const STATS_REPORT_DELAYS_MS = [2000, 6000];
/** How much longer than a UDP relay candidate a TCP relay candidate is held. */
export const TCP_RELAY_HOLD_MS = 300;

/** Whether a relay candidate reaches its TURN server over TCP or TLS. */
function relayOverTcp(c: RTCIceCandidate, url?: string | null): boolean {
  const proto = (c as { relayProtocol?: string }).relayProtocol;
  if (proto) return proto !== 'udp';
  return !!url && (/^turns:/.test(url) || /transport=tcp/i.test(url));
}

/**
 * This network reaches the relay only over TCP, and the node answered with
 * an engine that cannot take that (node-datachannel, libjuice#355): open
 * again asking for `engine`.
 */
export class NeedsEngine extends PeerwayError {
  constructor(readonly engine: EngineName) {
    super(
      'session_failed',
      `this network reaches the relay only over TCP: asking the node for its ${engine} engine`,
    );
  }
}

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
  const listeners: ((m: ServerToClient) => void)[] = [];
  const deliver = (data: string) => {
    const r = parseServerToClient(data);
    if (r.ok) for (const l of listeners) l(r.value);
  };
  // An adopted socket keeps buffering (the inline script's handler) until
  // the session's listener is in place below.
  if (!adopted) ws.onmessage = (ev) => deliver(String(ev.data));
  // The peer connection and its offer do not depend on the session: they are
  // made first and the offer goes with the session request (below); its ICE
  // servers are set once known, before setLocalDescription starts gathering.
  // (Assigned before the request is sent, so before any reply can arrive.)
  let pc!: RTCPeerConnection;
  let dc!: RTCDataChannel;
  let offer!: Promise<RTCSessionDescriptionInit>;
  /** This function's own request carried the offer. */
  let offerInOpen = false;
  const cleanup = () => {
    (pc as RTCPeerConnection | undefined)?.close();
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
    const ref = adopted?.ref ?? Math.random().toString(36).slice(2);
    const result = await new Promise<OpenTunnel>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new PeerwayError(
              'session_failed',
              'the connection to the node could not be set up in time (a firewall may block it, or the relay is unreachable)',
            ),
          ),
        SESSION_TIMEOUT_MS,
      );
      const fail = (e: PeerwayError) => (clearTimeout(timer), reject(e));
      let sessionId = '';
      /** The engine the node answered with, when it said. */
      let answerEngine: EngineName | undefined;
      /** Set with the session (below): fails with NeedsEngine when this network needs another engine. */
      let checkEngine = () => {};
      listeners.push(async (m) => {
        try {
          if (m.type === 'session-error' && (m.ref === ref || m.sessionId === sessionId))
            return fail(new PeerwayError(m.code, m.message));
          // Before the session, the request is all this connection said: an
          // error now is its refusal (say so now, not at the timeout).
          if (m.type === 'error' && !sessionId) return fail(new PeerwayError(m.code, m.message));
          if (m.type === 'session' && m.ref === ref) {
            // one mark per attempt (the page script marked the one it took)
            if (!adopted?.offering) performance.mark('peerway:session');
            sessionId = m.sessionId;
            // (the page script has, when it made the offer itself)
            if (!adopted?.offering) pc.setConfiguration({ iceServers: m.iceServers });
            // Nothing but host candidates a few seconds in, on a page that was
            // given STUN/TURN servers, means those servers are unreachable.
            let reflexive = false;
            if (m.iceServers.length > 0) {
              setTimeout(() => {
                if (!reflexive && pc.connectionState !== 'connected') {
                  fail(
                    new PeerwayError(
                      'session_failed',
                      "No direct path to the node, and the relay (TURN) is unreachable. Ask the server's admin to check TURN.",
                    ),
                  );
                }
              }, RELAY_UNREACHABLE_MS);
            }
            pc.addEventListener('icecandidate', (ev) => {
              if (ev.candidate && (ev.candidate.type === 'srflx' || ev.candidate.type === 'relay'))
                reflexive = true;
            });
            // Direct first: our relay candidates (and the end-of-candidates
            // mark after them) go out RELAY_HOLD_MS after the offer.
            const holdUntil = performance.now() + RELAY_HOLD_MS;
            // Candidates go out after the offer, never before: the node
            // cannot place a candidate for a session it has not heard of.
            let offerSent = false;
            const beforeOffer: (RTCIceCandidate | null)[] = [];
            const trickle = (c: RTCIceCandidate | null) => {
              if (!offerSent) return void beforeOffer.push(c);
              send({ type: 'candidate', sessionId, candidate: c ? (c.toJSON() as never) : null });
            };
            // Relay over TCP is the way out for networks that drop UDP. Where the
            // UDP relay works the node must not meet the TCP one first: it
            // answers whichever check arrives first, and werift keeps the first
            // nomination. So a TCP relay goes out only if no UDP relay turned up
            // TCP_RELAY_HOLD_MS after the relay hold.
            let relayUdp = false;
            // Nothing but a relay over TCP (no server-reflexive candidate, no
            // UDP relay), and the node's engine cannot take that: ask again
            // for one that can, now rather than after ICE gives up.
            let srflx = false;
            let tcpRelayOnly = false;
            checkEngine = () => {
              if (!tcpRelayOnly || srflx || engine || answerEngine !== 'node-datachannel') return;
              const st = pc.iceConnectionState;
              if (st === 'connected' || st === 'completed') return;
              fail(new NeedsEngine('werift'));
            };
            let pending = 0;
            let endHeld = false;
            const later = (ms: number, f: () => void) => {
              pending++;
              setTimeout(() => {
                pending--;
                f();
                if (pending === 0 && endHeld) trickle(null);
              }, ms);
            };
            pc.onicecandidate = (ev) => {
              const c = ev.candidate;
              if (!c) return pending > 0 ? void (endHeld = true) : trickle(null);
              if (c.type === 'srflx') srflx = true;
              if (c.type !== 'relay') return trickle(c);
              const tcp = relayOverTcp(c, (ev as { url?: string | null }).url);
              if (!tcp) relayUdp = true;
              const wait =
                Math.max(0, holdUntil - performance.now()) + (tcp ? TCP_RELAY_HOLD_MS : 0);
              later(wait, () => {
                if (!(tcp && relayUdp)) trickle(c);
              });
              // The engine question need not wait for the relay hold (1.5 s):
              // a UDP relay, when UDP works, comes well before a TCP one.
              if (tcp)
                setTimeout(() => {
                  tcpRelayOnly = !relayUdp;
                  checkEngine();
                }, TCP_RELAY_HOLD_MS);
            };
            // A relay that is down or refuses our credentials shows up as an
            // icecandidateerror; once gathering is over without a relay and no
            // path works shortly after, say so instead of waiting out ICE.
            let relayError = '';
            pc.onicecandidateerror = (ev) => {
              const e = ev as RTCPeerConnectionIceErrorEvent;
              if (/^turns?:/.test(e.url))
                relayError = e.errorCode === 401 ? 'refused our credentials' : 'is unreachable';
            };
            pc.onicegatheringstatechange = () => {
              if (pc.iceGatheringState !== 'complete' || !relayError) return;
              setTimeout(() => {
                if (pc.connectionState !== 'connected') {
                  fail(
                    new PeerwayError(
                      'session_failed',
                      `No direct path to the node, and the relay (TURN) ${relayError}. Ask the server's admin to check TURN.`,
                    ),
                  );
                }
              }, RELAY_FAILURE_GRACE_MS);
            };
            // What the page script saw before this took over goes through the
            // same handlers, in order, as if it happened now.
            if (adopted) {
              // (direct ones it has sent already; relay ones and the end mark it left to us)
              for (const { ev, sent } of adopted.candidates.splice(0)) {
                const c = ev.candidate;
                if (c && (c.type === 'srflx' || c.type === 'relay')) reflexive = true;
                if (c?.type === 'srflx') srflx = true;
                if (!sent) pc.onicecandidate(ev);
              }
              for (const ev of adopted.candidateErrors.splice(0)) pc.onicecandidateerror(ev);
              if (pc.iceGatheringState === 'complete')
                pc.onicegatheringstatechange(new Event('icegatheringstatechange'));
            }
            pc.onconnectionstatechange = () => {
              if (pc.connectionState === 'failed')
                fail(
                  new PeerwayError('session_failed', 'no network path to the node (ICE failed)'),
                );
            };
            pc.addEventListener('iceconnectionstatechange', () => {
              if (pc.iceConnectionState === 'connected') performance.mark('peerway:ice');
            });
            dc.onopen = () => {
              performance.mark('peerway:open');
              clearTimeout(timer);
              const max = pc.sctp?.maxMessageSize ?? 65536;
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
              const report = () =>
                void pc.getStats().then((r) => {
                  const stats = summariseStats(r);
                  if (stats)
                    send({ type: 'session-stats', sessionId, stats: { ...stats, setupMs } });
                });
              report();
              for (const ms of STATS_REPORT_DELAYS_MS) setTimeout(report, ms);
              const liveness = watchLiveness(pc, mux);
              // The server saw the node's signaling drop: a hint worth a quick look.
              listeners.push((x) => {
                if (x.type === 'node-offline' && x.sessionId === sessionId) liveness.probe();
                // The server withdrew the right to this session (access changed,
                // a share or a serving grant was taken back): the page stops
                // using the channel even if the node were to keep it open.
                if (x.type === 'session-error' && x.sessionId === sessionId)
                  mux.close(`the server ended the session: ${x.message}`);
              });
              resolve({
                mux,
                node: m.node,
                setupMs,
                close: () => {
                  mux.close('closed by the page');
                  cleanup();
                },
              });
            };
            // The page script may have got as far as an open channel.
            if (adopted && dc.readyState === 'open') dc.onopen(new Event('open'));
            if (adopted?.offering) {
              if (!(await adopted.offering))
                throw new PeerwayError('session_failed', 'the offer could not be made');
              if (adopted.answered) {
                if (!(await adopted.answered))
                  throw new PeerwayError('session_failed', "the node's answer did not apply");
                answerEngine = adopted.answerEngine;
                onAnswered?.();
                checkEngine();
              }
            } else {
              await pc.setLocalDescription(await offer);
              if (!(adopted?.offerInOpen ?? offerInOpen)) {
                send({ type: 'offer', sessionId, sdp: pc.localDescription!.sdp });
                performance.mark('peerway:offer');
              }
            }
            offerSent = true;
            for (const c of beforeOffer.splice(0)) trickle(c);
          } else if (m.type === 'answer' && m.sessionId === sessionId) {
            performance.mark('peerway:answer');
            answerEngine = m.engine;
            await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
            onAnswered?.();
            checkEngine();
          } else if (m.type === 'candidate' && m.sessionId === sessionId && m.candidate) {
            await pc.addIceCandidate(m.candidate as RTCIceCandidateInit).catch(() => {});
          }
        } catch (err) {
          fail(
            err instanceof PeerwayError
              ? err
              : new PeerwayError('session_failed', (err as Error).message),
          );
        }
      });
      if (adopted) {
        // asked for already: take over the connection and what the server said so far
        pc = adopted.pc!;
        dc = adopted.dc!;
        offer = adopted.offer!;
        ws.onmessage = (ev) => deliver(String(ev.data));
        for (const data of adopted.msgs.splice(0)) deliver(data);
        return;
      }
      pc = new RTCPeerConnection();
      dc = pc.createDataChannel(TUNNEL_LABEL, { ordered: true });
      offer = pc.createOffer();
      // The offer goes with the request (the node can answer at once); one
      // that could not be made is left to the session handler to report.
      const open = (sdp?: string) => {
        send({
          type: 'open',
          ref,
          service,
          token,
          ...(avoid.length ? { avoid } : {}),
          ...(sdp !== undefined ? { offer: sdp } : {}),
          ...(engine ? { engine } : {}),
        });
        offerInOpen = sdp !== undefined;
        if (offerInOpen) performance.mark('peerway:offer');
      };
      offer.then(
        (o) => open(o.sdp),
        () => open(),
      );
    });
    // Signaling stays open only to tell the server when the page goes; the data channel does not need it.
    return result;
  } catch (err) {
    cleanup();
    throw err;
  }
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
