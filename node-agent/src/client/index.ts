/**
 * The Node tunnel client: opens a session to a service exactly as the
 * browser shell does (access token → /ws/client open → werift offer →
 * answer → data channel) and issues requests through it. Used by tests and
 * benchmarks.
 */
import WebSocket from 'ws';
import type { RTCDataChannel, RTCPeerConnection } from 'werift';
import {
  ClientSession,
  PeerwayError,
  TUNNEL_LABEL,
  TunnelMux,
  encodeMessage,
  parseServerToClient,
  type ClientToServer,
  type EngineName,
  type ConnectionStats,
  type ConnectedSession,
  type SessionPeer,
  type TunnelResponse,
  type HeaderPairs,
  type BodySource,
  type FrameChannel,
  type IceServer,
} from '@peerway/protocol';
import {
  boundGathering,
  tuneDtls,
  connectionStats,
  createPeerConnection,
  tunnelChannel,
} from '../engine/werift/peer';

export interface ConnectOptions {
  serverUrl: string;
  service: string;
  /** A user token (PAT or session) for private services. */
  userToken?: string;
  /** A ready service access token (skips fetching one). */
  accessToken?: string;
  avoid?: string[];
  /** ICE servers to use instead of the ones the server hands out (tests). */
  iceServers?: IceServer[];
  timeoutMs?: number;
  /**
   * Ask the node to answer with this engine (if it has it); null: the
   * node's default. Default werift: werift offering to libdatachannel
   * stalls ~1 s in the DTLS handshake (setup 1,021 ms against 49 ms
   * werift to werift, measured here).
   */
  engine?: EngineName | null;
}

export interface TunnelTimings {
  tokenMs: number;
  signalingMs: number;
  iceMs: number;
  dtlsSctpMs: number;
  totalMs: number;
}

export interface TunnelClient {
  mux: TunnelMux;
  /** The raw channel under the mux (tests use it to send hostile frames). */
  channel: FrameChannel;
  sessionId: string;
  node: { shortId: string; name: string };
  /** The node's engine that answered, when it said. */
  engine: EngineName | undefined;
  timings: TunnelTimings;
  stats(): Promise<ConnectionStats | null>;
  /** A small fetch-like helper: collects nothing, returns the streaming response. */
  request(
    method: string,
    path: string,
    opts?: { headers?: HeaderPairs; body?: BodySource; signal?: AbortSignal },
  ): Promise<TunnelResponse>;
  close(): void;
}

/** Fetches a service access token from the server. */
export async function fetchAccessToken(
  serverUrl: string,
  service: string,
  userToken?: string,
): Promise<string> {
  const res = await fetch(
    new URL(`/api/services/${encodeURIComponent(service)}/access-token`, serverUrl),
    {
      method: 'POST',
      headers: userToken ? { authorization: `Bearer ${userToken}` } : {},
    },
  );
  const body = (await res.json().catch(() => ({}))) as {
    token?: string;
    error?: { code: PeerwayError['code']; message: string };
  };
  if (!res.ok || !body.token)
    throw new PeerwayError(
      body.error?.code ?? 'internal',
      body.error?.message ?? `HTTP ${res.status}`,
    );
  return body.token;
}

/** Opens a tunnel to `service`. */
export async function connectTunnel(o: ConnectOptions): Promise<TunnelClient> {
  const t0 = performance.now();
  const timeoutMs = o.timeoutMs ?? 20_000;
  const token = o.accessToken ?? (await fetchAccessToken(o.serverUrl, o.service, o.userToken));
  const tToken = performance.now();
  const wsUrl = new URL('/ws/client', o.serverUrl);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(wsUrl);
  const send = (m: ClientToServer) => ws.readyState === WebSocket.OPEN && ws.send(encodeMessage(m));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // The peer connection is made once the session is granted (its ICE
  // servers come with it); the offer follows as its own message.
  let session!: ClientSession;
  let pc: RTCPeerConnection | undefined;
  let dc: RTCDataChannel | undefined;
  let offer: { sdp: string; type: 'offer' } | undefined;
  let tAnswer = 0;
  let tIce = 0;
  const peer: SessionPeer = {
    async createOffer(sessionIceServers = []) {
      const iceServers = o.iceServers ?? sessionIceServers;
      const p = createPeerConnection(iceServers);
      pc = p;
      dc = p.createDataChannel(TUNNEL_LABEL, { ordered: true });
      // Trickle ICE, as a browser does: the offer goes out before gathering
      // (werift's createOffer SDP holds no candidates), candidates follow.
      p.onIceCandidate.subscribe((c) => {
        if (c?.candidate)
          session.candidate({
            candidate: {
              candidate: c.candidate,
              sdpMid: c.sdpMid ?? null,
              sdpMLineIndex: c.sdpMLineIndex ?? null,
            },
            type: / typ (\w+)/.exec(c.candidate)?.[1] ?? null,
          });
      });
      p.iceConnectionStateChange.subscribe((s) => {
        if (s === 'connected' && tAnswer) tIce = performance.now();
      });
      const channel = dc;
      channel.stateChanged.subscribe((s) => {
        if (s === 'open') session.channelOpen();
        else if (s === 'closed') session.peerFailed('data channel closed before opening');
      });
      const made = await p.createOffer();
      offer = { type: 'offer', sdp: made.sdp };
      return made.sdp;
    },
    setLocal(sessionIceServers) {
      boundGathering(pc!, o.iceServers ?? sessionIceServers);
      tuneDtls(pc!);
      void pc!.setLocalDescription(offer!).catch(() => {});
      return Promise.resolve(offer!.sdp);
    },
    async applyAnswer(sdp) {
      await pc!.setRemoteDescription({ type: 'answer', sdp });
    },
    async addCandidate(c) {
      await pc?.addIceCandidate(c ?? undefined);
    },
    connected: () => pc?.connectionState === 'connected',
    iceConnected: () =>
      pc?.iceConnectionState === 'connected' || pc?.iceConnectionState === 'completed',
  };
  const opened = new Promise<ConnectedSession>((resolve, reject) => {
    session = new ClientSession({
      service: o.service,
      token,
      ...(o.avoid ? { avoid: o.avoid } : {}),
      ...(o.engine !== null ? { engine: o.engine ?? 'werift' } : {}),
      send,
      peer,
      // every candidate as found, as before the policy: this client is for
      // tests and benchmarks, where the fastest path is the one wanted
      holdRelay: false,
      stateTimeouts: {
        requesting: { ms: timeoutMs, message: 'no answer from the server' },
        answering: { ms: timeoutMs, message: `no answer within ${timeoutMs} ms` },
        connecting: { ms: timeoutMs, message: `data channel did not open within ${timeoutMs} ms` },
      },
      on: {
        answer: () => {
          tAnswer = performance.now();
          tIce = tAnswer;
        },
        connected: resolve,
        failed: reject,
      },
    });
  });
  ws.on('message', (raw) => {
    const r = parseServerToClient(raw as Buffer);
    if (r.ok) session.receive(r.value);
  });
  session.start();
  const connected = await opened.catch(async (err: unknown) => {
    await pc?.close().catch(() => {});
    ws.close();
    throw err;
  });
  const sessionId = connected.sessionId;
  const tOpen = performance.now();
  const channel = tunnelChannel(dc!);
  const mux = new TunnelMux(channel, { role: 'client' });
  void connectionStats(pc!).then((stats) => {
    if (stats)
      send({
        type: 'session-stats',
        sessionId,
        stats: { ...stats, setupMs: tOpen - t0 },
      });
  });
  let closed = false;
  return {
    mux,
    channel,
    sessionId,
    node: connected.node,
    engine: connected.engine,
    timings: {
      tokenMs: tToken - t0,
      signalingMs: tAnswer - tToken,
      iceMs: Math.max(0, tIce - tAnswer),
      dtlsSctpMs: tOpen - Math.max(tIce, tAnswer),
      totalMs: tOpen - t0,
    },
    stats: () => connectionStats(pc!),
    request: (method, path, opts = {}) =>
      mux.request(
        { method, path, headers: opts.headers ?? [] },
        opts.body ?? null,
        opts.signal ? { signal: opts.signal } : {},
      ),
    close() {
      if (closed) return;
      closed = true;
      mux.close('client closing');
      void pc!.close().catch(() => {});
      session.close();
      send({ type: 'close', sessionId });
      ws.close();
    },
  };
}
