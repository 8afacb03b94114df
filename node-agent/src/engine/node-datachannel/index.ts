/**
 * The node-datachannel engine (libdatachannel through its npm bindings,
 * prebuilt binary in the package): SCTP/DTLS in C++, several times werift's
 * throughput and a fraction of its setup time (bench/README.md). Loaded
 * lazily, so the agent runs without it when the addon is missing.
 *
 * libjuice (its ICE) has no TURN over TCP/TLS on this side; the browser's own
 * TURN-over-TCP still works, since the agent reaches the relay over UDP.
 */
import { createRequire } from 'node:module';
import type { IceServer } from '@peerway/protocol';
import { summariseStats } from '@peerway/protocol';
import type { AnswerSession, RtcEngine } from '../types';
import type * as Ndc from 'node-datachannel';

type NdcModule = typeof Ndc;
let mod: NdcModule | null = null;

/** The addon, or a clear error saying how to get it. */
export function loadNodeDataChannel(): NdcModule {
  if (mod) return mod;
  try {
    mod = createRequire(import.meta.url)('node-datachannel') as NdcModule;
    // PEERWAY_NDC_LOG=Debug (or Info, Warning…): libdatachannel's own log on stderr
    const level = process.env.PEERWAY_NDC_LOG as Ndc.LogLevel | undefined;
    if (level) mod.initLogger(level, (l, m) => process.stderr.write(`[ndc ${l}] ${m}\n`));
    return mod;
  } catch (err) {
    throw new Error(
      `the node-datachannel engine needs the node-datachannel package (npm install node-datachannel): ${(err as Error).message}`,
    );
  }
}

/** STUN/TURN servers in libdatachannel's form (objects: REST usernames contain ":"). */
export function ndcIceServers(iceServers: IceServer[]): (string | Ndc.IceServer)[] {
  const out: (string | Ndc.IceServer)[] = [];
  for (const s of iceServers)
    for (const url of Array.isArray(s.urls) ? s.urls : [s.urls]) {
      const m = /^(stun|turns?):(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(
        url.trim(),
      );
      if (!m) continue;
      const [, scheme, host, port, transport] = m;
      const hostname = host!.replace(/^\[|\]$/g, '');
      if (scheme!.toLowerCase() === 'stun') out.push({ hostname, port: Number(port ?? 3478) });
      else if (s.username && s.credential)
        out.push({
          hostname,
          port: Number(port ?? (scheme === 'turns' ? 5349 : 3478)),
          username: s.username,
          password: s.credential,
          relayType:
            scheme === 'turns'
              ? 'TurnTls'
              : transport?.toLowerCase() === 'tcp'
                ? 'TurnTcp'
                : 'TurnUdp',
        });
    }
  return out;
}

/** Candidate type and transport of a selected-pair end, in the report's words. */
function side(info: Ndc.SelectedCandidateInfo | undefined) {
  const t = info?.type?.toLowerCase() ?? '';
  const type = /relay/.test(t)
    ? 'relay'
    : /srflx|server/.test(t)
      ? 'srflx'
      : /prflx|peer/.test(t)
        ? 'prflx'
        : /host/.test(t)
          ? 'host'
          : 'unknown';
  return {
    type,
    transport: (info?.transportType ?? '').toLowerCase().includes('tcp') ? 'tcp' : 'udp',
  };
}

export const nodeDataChannelEngine: RtcEngine = {
  name: 'node-datachannel',
  answerer(iceServers: IceServer[], label: string): AnswerSession {
    const ndc = loadNodeDataChannel();
    const pc = new ndc.PeerConnection('peerway-agent', {
      iceServers: ndcIceServers(iceServers),
      // The tunnel's frames are at most 64 KiB; let the browser send up to 256 KiB.
      maxMessageSize: 256 * 1024,
    });
    let got = false;
    let closed = false;
    let answerResolve: ((sdp: string) => void) | null = null;
    pc.onLocalDescription((sdp, type) => {
      if (type.toLowerCase() === 'answer') answerResolve?.(sdp);
    });
    return {
      answer(offer) {
        return new Promise((resolve) => {
          answerResolve = resolve;
          pc.setRemoteDescription(offer, 'offer');
        });
      },
      async addRemoteCandidate(c) {
        if (!c?.candidate) return;
        pc.addRemoteCandidate(c.candidate, c.sdpMid ?? '0');
      },
      onCandidate(cb) {
        pc.onLocalCandidate((candidate, mid) => cb({ candidate, sdpMid: mid }));
      },
      onChannel(cb) {
        pc.onDataChannel((dc) => {
          if (dc.getLabel() !== label || got) return dc.close();
          got = true;
          const open = () => cb(fromNdcChannel(dc));
          if (dc.isOpen()) open();
          else dc.onOpen(open);
        });
      },
      onEnd(cb) {
        pc.onStateChange((s) => {
          if (s === 'failed' || s === 'closed') cb(s);
        });
      },
      async stats() {
        const pair = pc.getSelectedCandidatePair();
        if (!pair) return null;
        const l = side(pair.local);
        const r = side(pair.remote);
        // The same summary the other engines give, built from what libdatachannel exposes.
        return summariseStats([
          { type: 'transport', id: 't', selectedCandidatePairId: 'p' },
          {
            type: 'candidate-pair',
            id: 'p',
            state: 'succeeded',
            nominated: true,
            localCandidateId: 'l',
            remoteCandidateId: 'r',
            currentRoundTripTime: pc.rtt() / 1000,
            bytesSent: pc.bytesSent(),
            bytesReceived: pc.bytesReceived(),
          },
          {
            type: 'local-candidate',
            id: 'l',
            candidateType: l.type,
            protocol: l.transport,
            ...(l.type === 'relay' ? { relayProtocol: l.transport } : {}),
          },
          { type: 'remote-candidate', id: 'r', candidateType: r.type, protocol: r.transport },
        ]);
      },
      remoteAddress() {
        const a = pc.getSelectedCandidatePair()?.remote?.address;
        return a && /^[0-9a-f.:]+$/i.test(a) ? a : undefined;
      },
      close() {
        if (closed) return;
        closed = true;
        pc.close();
      },
    };
  },
};

/** libdatachannel's channel as the tunnel's FrameChannel. */
function fromNdcChannel(dc: Ndc.DataChannel): import('@peerway/protocol').FrameChannel {
  const msgCbs: ((d: Uint8Array) => void)[] = [];
  dc.onMessage((m) => {
    if (typeof m === 'string') return; // text is not part of the tunnel protocol
    const u =
      m instanceof ArrayBuffer
        ? new Uint8Array(m)
        : new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    for (const cb of msgCbs) cb(u);
  });
  const max = dc.maxMessageSize();
  return {
    send: (data) => void dc.sendMessageBinary(data),
    get bufferedAmount() {
      return dc.bufferedAmount();
    },
    maxMessageSize: max > 0 ? max : 65536,
    // node-datachannel copies each message out of libdatachannel into a new Buffer
    ownsMessages: true,
    get isOpen() {
      return dc.isOpen();
    },
    setBufferedAmountLowThreshold: (n) => dc.setBufferedAmountLowThreshold(n),
    onMessage: (cb) => void msgCbs.push(cb),
    onBufferedAmountLow: (cb) => dc.onBufferedAmountLow(cb),
    onClose: (cb) => dc.onClosed(cb),
    close: () => dc.close(),
  };
}
