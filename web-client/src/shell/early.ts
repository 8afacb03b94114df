/**
 * The shell page's first script, inlined into the page by the server
 * (signaling-server/src/web/service-origin.ts) right after the page's
 * config: it runs while the shell's bundle (~130 KB) is still being fetched.
 * It opens the signaling connection and, when the page carries its token,
 * makes the peer connection and its offer and asks for the session with
 * the offer, applies it once the session is granted, sends its direct (non-relay)
 * candidates, and applies the node's answer and candidates: ICE and DTLS
 * then run while the bundle is still loading. What needs the bundle's
 * judgement waits for it: relay candidates and the end-of-candidates mark
 * (held back so a direct path wins), candidate errors, every other server
 * message. The bundle takes over (`takeEarlyStart` in ./session.ts).
 *
 * No imports (a classic script, its own build entry, nothing shared with
 * the bundle) and no validation beyond JSON: the bundle validates every
 * message it replays; this only reads `session` for its own ref. What it
 * copies ("must match" below, the engine names, the messages it sends)
 * ./early.test.ts checks against the originals by running it.
 */

/** What the bundle takes over; a type only, erased from both builds. */
export interface EarlyStart {
  ws: WebSocket;
  /** The server's messages not yet seen by the bundle, raw. */
  msgs: string[];
  ref: string;
  token?: string;
  pc?: RTCPeerConnection;
  dc?: RTCDataChannel;
  offer?: Promise<RTCSessionDescriptionInit>;
  /** The offer went out inside the session request (`open`): no `offer` message follows. */
  offerInOpen?: boolean;
  /** Set once the session was granted: resolves true when the offer went out. */
  offering?: Promise<boolean>;
  /** Set once the node's answer came: resolves true when it was applied. */
  answered?: Promise<boolean>;
  /** The engine the node answered with, when it said. */
  answerEngine?: 'werift' | 'node-datachannel';
  /** The engine this tab asked for (see ENGINE_KEY). */
  engine?: 'werift';
  /** Local ICE candidates (null: gathering done); `sent`: this script trickled it. */
  candidates: { ev: RTCPeerConnectionIceEvent; sent: boolean }[];
  candidateErrors: RTCPeerConnectionIceErrorEvent[];
  /** Data channel messages that arrived before the bundle listened. */
  channelMessages: unknown[];
}

// Must match TUNNEL_LABEL in protocol/src/tunnel/wire.ts (a string here:
// importing it would make a chunk shared with the bundle, which this
// classic script cannot load).
const LABEL = 'peerway-tunnel';
// Must match ENGINE_KEY in ./main.ts: the engine this tab's network needs,
// once a session found it (a reload then asks for it at once).
const ENGINE_KEY = 'peerway:engine';

(() => {
  performance.mark('peerway:early');
  const cfg = (window as { __PEERWAY__?: { service: string; token?: string } }).__PEERWAY__;
  if (!cfg) return;
  // Its own copy: the bundle moves the page's token into sessionStorage,
  // maybe before this socket opens.
  const token = cfg.token;
  let engine: 'werift' | undefined;
  try {
    if (sessionStorage.getItem(ENGINE_KEY) === 'werift') engine = 'werift';
  } catch {
    // no storage here: ask for the node's default
  }
  const e: EarlyStart = {
    ws: new WebSocket(
      `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/client`,
    ),
    msgs: [],
    ref: Math.random().toString(36).slice(2),
    ...(token ? { token } : {}),
    ...(engine ? { engine } : {}),
    candidates: [],
    candidateErrors: [],
    channelMessages: [],
  };
  (window as { __peerwayEarly?: EarlyStart }).__peerwayEarly = e;
  const ws = e.ws;
  const send = (m: object): boolean => {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(m));
    return true;
  };
  let sessionId: string | undefined;
  /** Candidates may go out (the offer has, and the session is known). */
  let offerSent = false;
  /** Direct candidates go out as found, once the offer has. */
  const trickle = (c: { ev: RTCPeerConnectionIceEvent; sent: boolean }) => {
    const cand = c.ev.candidate;
    if (!offerSent || !cand || cand.type === 'relay' || c.sent) return;
    c.sent = true;
    send({ type: 'candidate', sessionId, candidate: cand.toJSON() });
  };
  type Msg = {
    type?: string;
    ref?: string;
    sessionId?: string;
    sdp?: string;
    candidate?: RTCIceCandidateInit | null;
    iceServers?: RTCIceServer[];
    engine?: string;
  };
  ws.onmessage = (m: MessageEvent) => {
    const raw = String(m.data);
    const pc = e.pc;
    let x: Msg = {};
    try {
      x = JSON.parse(raw) as Msg;
    } catch {
      // the bundle says what is wrong with it
    }
    if (pc && !e.offering && x.type === 'session' && x.ref === e.ref) {
      performance.mark('peerway:session');
      sessionId = x.sessionId;
      e.offering = (async () => {
        try {
          pc.setConfiguration({ iceServers: x.iceServers ?? [] });
          await pc.setLocalDescription(await e.offer!);
          if (!e.offerInOpen) {
            if (!send({ type: 'offer', sessionId, sdp: pc.localDescription!.sdp })) return false;
            performance.mark('peerway:offer');
          }
          offerSent = true;
          e.candidates.forEach(trickle);
          return true;
        } catch {
          return false;
        }
      })();
    } else if (
      pc &&
      e.offering &&
      !e.answered &&
      x.type === 'answer' &&
      x.sessionId === sessionId
    ) {
      performance.mark('peerway:answer');
      const sdp = x.sdp ?? '';
      if (x.engine === 'werift' || x.engine === 'node-datachannel') e.answerEngine = x.engine;
      e.answered = e.offering.then((ok) =>
        ok
          ? pc.setRemoteDescription({ type: 'answer', sdp }).then(
              () => true,
              () => false,
            )
          : false,
      );
      return; // applied here, not replayed
    } else if (pc && e.answered && x.type === 'candidate' && x.sessionId === sessionId) {
      const c = x.candidate;
      if (c)
        void e.answered.then(async (ok) => {
          if (ok) await pc.addIceCandidate(c).catch(() => {});
        });
      return;
    }
    e.msgs.push(raw);
  };
  // The worker must control the app's frame before it loads; registered
  // here it installs while the bundle is on its way (the bundle registers
  // again: the same registration). Must match SW_PATH in ../bridge.ts.
  try {
    void navigator.serviceWorker?.register('/__peerway/sw.js', { scope: '/' }).catch(() => {});
  } catch {
    // no service workers here: the bundle says so
  }
  if (!token) return;
  try {
    const pc = new RTCPeerConnection();
    e.pc = pc;
    e.dc = pc.createDataChannel(LABEL, { ordered: true });
    e.dc.binaryType = 'arraybuffer';
    e.dc.onmessage = (ev) => e.channelMessages.push(ev.data);
    // marks of a cold open (the bundle's own come later and do not count)
    e.dc.onopen = () => performance.mark('peerway:open');
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc.iceConnectionState === 'connected') performance.mark('peerway:ice');
    });
    pc.onicecandidate = (ev) => {
      const c = { ev, sent: false };
      e.candidates.push(c);
      trickle(c);
    };
    pc.onicecandidateerror = (ev) => e.candidateErrors.push(ev);
    e.offer = pc.createOffer();
    e.offer.catch(() => {});
    ws.addEventListener('open', () => {
      performance.mark('peerway:signaling');
      // The offer (made while the socket connected) goes with the request:
      // the node can answer without waiting for this page to hear `session`.
      const open = (offer?: string) => {
        if (!send({ type: 'open', ref: e.ref, service: cfg.service, token, offer, engine })) return;
        e.offerInOpen = offer !== undefined;
        if (e.offerInOpen) performance.mark('peerway:offer');
      };
      e.offer!.then(
        (o) => open(o.sdp),
        () => open(),
      );
    });
  } catch {
    e.pc?.close();
    delete e.pc;
  }
})();
