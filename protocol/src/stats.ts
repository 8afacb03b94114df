/**
 * Summarises a WebRTC stats report (browser or werift) into how the
 * connection was made: the selected candidate pair's local and remote
 * candidate types and transport. Browser-safe.
 */
import type { ConnectionStats } from './signaling';

type Stat = Record<string, unknown> & { type?: string; id?: string };
const CANDIDATE_TYPES = new Set(['host', 'srflx', 'prflx', 'relay']);
const TRANSPORTS = new Set(['udp', 'tcp', 'tls']);

const ctype = (v: unknown) =>
  typeof v === 'string' && CANDIDATE_TYPES.has(v)
    ? (v as ConnectionStats['localCandidateType'])
    : 'unknown';
const proto = (v: unknown) =>
  typeof v === 'string' && TRANSPORTS.has(v.toLowerCase())
    ? (v.toLowerCase() as ConnectionStats['protocol'])
    : 'unknown';

/** The selected pair of a stats report, or null before one is selected. */
export function summariseStats(
  report: Iterable<unknown> | { forEach(cb: (v: unknown) => void): void },
): ConnectionStats | null {
  const all: Stat[] = [];
  if (Symbol.iterator in Object(report)) {
    for (const entry of report as Iterable<unknown>) {
      // Maps iterate as [key, value]; werift returns an array of values.
      const v = Array.isArray(entry) && entry.length === 2 ? entry[1] : entry;
      if (v && typeof v === 'object') all.push(v as Stat);
    }
  } else
    (report as { forEach(cb: (v: unknown) => void): void }).forEach(
      (v) => v && typeof v === 'object' && all.push(v as Stat),
    );
  const byId = new Map(all.filter((s) => typeof s.id === 'string').map((s) => [s.id!, s]));
  const transport = all.find(
    (s) => s.type === 'transport' && typeof s.selectedCandidatePairId === 'string',
  );
  const pair =
    (transport ? byId.get(transport.selectedCandidatePairId as string) : undefined) ??
    all.find(
      (s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded',
    ) ??
    all.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded');
  if (!pair) return null;
  const local = byId.get(pair.localCandidateId as string);
  const remote = byId.get(pair.remoteCandidateId as string);
  const out: ConnectionStats = {
    localCandidateType: ctype(local?.candidateType),
    remoteCandidateType: ctype(remote?.candidateType),
    protocol: proto(local?.protocol),
  };
  if (local?.candidateType === 'relay')
    out.relayProtocol = proto(local.relayProtocol ?? local.protocol);
  const rtt = pair.currentRoundTripTime;
  if (typeof rtt === 'number' && rtt >= 0) out.rttMs = rtt < 60 ? rtt * 1000 : rtt; // browsers: seconds
  if (typeof pair.bytesSent === 'number') out.bytesSent = Math.floor(pair.bytesSent);
  if (typeof pair.bytesReceived === 'number') out.bytesReceived = Math.floor(pair.bytesReceived);
  return out;
}
