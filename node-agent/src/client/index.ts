/**
 * The Node tunnel client: opens a session to a service exactly as the
 * browser shell does (access token → /ws/client open → werift offer →
 * answer → data channel) and issues requests through it. Used by tests and
 * benchmarks.
 */
import WebSocket from 'ws';
import {
  PeerwayError,
  TUNNEL_LABEL,
  TunnelMux,
  encodeMessage,
  parseServerToClient,
  type ClientToServer,
  type EngineName,
  type ConnectionStats,
  type ServerToClient,
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
  waitOpen,
} from '../rtc';

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
  const messages: ((m: ServerToClient) => void)[] = [];
  ws.on('message', (raw) => {
    const r = parseServerToClient(raw as Buffer);
    if (r.ok) for (const cb of messages) cb(r.value);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const ref = Math.random().toString(36).slice(2);
  const session = await new Promise<Extract<ServerToClient, { type: 'session' }>>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new PeerwayError('session_failed', 'no answer from the server')),
        timeoutMs,
      );
      messages.push((m) => {
        if (m.type === 'session' && m.ref === ref) {
          clearTimeout(timer);
          resolve(m);
        } else if (m.type === 'session-error' && m.ref === ref) {
          clearTimeout(timer);
          reject(new PeerwayError(m.code, m.message));
        }
      });
      send({
        type: 'open',
        ref,
        service: o.service,
        token,
        ...(o.avoid ? { avoid: o.avoid } : {}),
        ...(o.engine !== null ? { engine: o.engine ?? 'werift' } : {}),
      });
    },
  ).catch((err: unknown) => {
    ws.close();
    throw err;
  });

  const pc = createPeerConnection(o.iceServers ?? session.iceServers);
  const dc = pc.createDataChannel(TUNNEL_LABEL, { ordered: true });
  let failure: PeerwayError | null = null;
  const failed = new Promise<never>((_, reject) => {
    messages.push((m) => {
      if (m.type === 'session-error' && m.sessionId === session.sessionId) {
        failure = new PeerwayError(m.code, m.message);
        reject(failure);
      }
    });
  });
  failed.catch(() => {});
  let answerEngine: EngineName | undefined;
  const answered = new Promise<string>((resolve) => {
    messages.push((m) => {
      if (m.type === 'answer' && m.sessionId === session.sessionId) {
        answerEngine = m.engine;
        resolve(m.sdp);
      }
      if (m.type === 'candidate' && m.sessionId === session.sessionId)
        void pc.addIceCandidate(m.candidate ?? undefined).catch(() => {});
    });
  });
  // Trickle ICE, as a browser does: the offer goes out before gathering
  // (werift's createOffer SDP holds no candidates), candidates follow.
  pc.onIceCandidate.subscribe((c) => {
    if (c?.candidate)
      send({
        type: 'candidate',
        sessionId: session.sessionId,
        candidate: {
          candidate: c.candidate,
          sdpMid: c.sdpMid ?? null,
          sdpMLineIndex: c.sdpMLineIndex ?? null,
        },
      });
  });
  const offer = await pc.createOffer();
  send({ type: 'offer', sessionId: session.sessionId, sdp: offer.sdp });
  boundGathering(pc, o.iceServers ?? session.iceServers);
  tuneDtls(pc);
  void pc.setLocalDescription(offer).catch(() => {});
  let answerTimer: NodeJS.Timeout | undefined;
  const sdp = await Promise.race([
    answered,
    failed,
    new Promise<never>((_, reject) => {
      answerTimer = setTimeout(
        () => reject(new PeerwayError('session_failed', `no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ])
    .catch(async (err: unknown) => {
      await pc.close().catch(() => {});
      ws.close();
      throw err;
    })
    .finally(() => clearTimeout(answerTimer));
  const tAnswer = performance.now();
  let tIce = tAnswer;
  pc.iceConnectionStateChange.subscribe((s) => {
    if (s === 'connected') tIce = performance.now();
  });
  await pc.setRemoteDescription({ type: 'answer', sdp });
  try {
    await Promise.race([waitOpen(dc, timeoutMs), failed]);
  } catch (err) {
    await pc.close().catch(() => {});
    ws.close();
    throw failure ?? new PeerwayError('session_failed', (err as Error).message);
  }
  const tOpen = performance.now();
  const channel = tunnelChannel(dc);
  const mux = new TunnelMux(channel, { role: 'client' });
  void connectionStats(pc).then((stats) => {
    if (stats)
      send({
        type: 'session-stats',
        sessionId: session.sessionId,
        stats: { ...stats, setupMs: tOpen - t0 },
      });
  });
  let closed = false;
  return {
    mux,
    channel,
    sessionId: session.sessionId,
    node: session.node,
    engine: answerEngine,
    timings: {
      tokenMs: tToken - t0,
      signalingMs: tAnswer - tToken,
      iceMs: Math.max(0, tIce - tAnswer),
      dtlsSctpMs: tOpen - Math.max(tIce, tAnswer),
      totalMs: tOpen - t0,
    },
    stats: () => connectionStats(pc),
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
      void pc.close().catch(() => {});
      send({ type: 'close', sessionId: session.sessionId });
      ws.close();
    },
  };
}
